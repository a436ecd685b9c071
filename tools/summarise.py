import sys, re
rows = []
for path in sys.argv[1:]:
    for line in open(path):
        if not line.startswith('| smollm2') and not line.startswith('| llama3') and not line.startswith('| models/') : continue
        c = [x.strip() for x in line.strip().strip('|').split('|')]
        rows.append(c)
cells = {}
order = []
for c in rows:
    key = (int(c[1]), int(c[2]))
    if key not in cells: cells[key] = {}; order.append(key)
    cells[key].setdefault('rows', []).append(c)
kinds = ['prompt-lookup', 'model', 'self (streaming', 'self (snapkv', 'self (magicpig']
print('| ctx | batch | plain tok/CPU-s | noise | ' + ' | '.join(f'{k} γ=4 / pred | auto' for k in kinds) + ' | T_V(4)/T_T | T_D/T_T |')
for key in order:
    rs = cells[key]['rows']
    noise = next(r for r in rs if r[3].startswith('none'))
    out = [str(key[0]), str(key[1]), noise[6], noise[8]]
    tv = tdt = None
    tds = []
    for k in kinds:
        g4 = next((r for r in rs if r[3].startswith(k) and r[4] == '4'), None)
        au = next((r for r in rs if r[3].startswith(k) and r[4].startswith('auto')), None)
        if g4 is None: out += ['–', '–']; continue
        out.append(f'{g4[8]} / {g4[9]}')
        note = ''
        if au is not None:
            if 'stopped' in au[4]: note = ' (stopped)'
            elif au[11] == '0.00' and au[12] == '0.00': note = ' (never speculated)'
        out.append((au[8] if au else '–') + note)
        tv = g4[15].split(' / ')[3]
        tds.append(g4[14])
    out += [tv or '–', ' / '.join(tds)]
    print('| ' + ' | '.join(out) + ' |')
