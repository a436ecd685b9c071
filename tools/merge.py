import sys
def load(paths):
    cells = {}
    for path in paths:
        for line in open(path):
            if not line.startswith('| smollm2'): continue
            c = [x.strip() for x in line.strip().strip('|').split('|')]
            cells.setdefault((int(c[1]), int(c[2])), []).append(c)
    return cells
ab = load(['/work/runs/s34/out/table-a.md', '/work/runs/s34/out/table-b.md'])
mp = load([p for p in ['/work/runs/s34/out/table-c.md', '/work/runs/s34/out/table-e1.md', '/work/runs/s34/out/table-e2.md'] if __import__('os').path.exists(p)])
def pair(rs, k):
    g4 = next((r for r in rs if r[3].startswith(k) and r[4] == '4'), None)
    au = next((r for r in rs if r[3].startswith(k) and r[4].startswith('auto')), None)
    if g4 is None: return None
    note = ''
    if 'stopped' in au[4]: note = ' (stopped)'
    elif au[11] == '0.00' and au[12] == '0.00': note = ' (never)'
    return f'{g4[8]} / {g4[9]}', au[8] + note, g4[14], g4[15].split(' / ')[3]
for key in sorted(ab):
    rs = ab[key]
    noise = next(r for r in rs if r[3].startswith('none'))
    out = [str(key[0]), str(key[1]), noise[6], noise[8]]
    tds = []
    tv = None
    for k in ['prompt-lookup', 'model', 'self (streaming', 'self (snapkv']:
        p = pair(rs, k); out += [p[0], p[1]]; tds.append(p[2]); tv = p[3]
    m = pair(mp.get(key, []), 'self (magicpig')
    if m is None: out += ['does not fit', '']; tds.append('–')
    else:
        mn = next(r for r in mp[key] if r[3].startswith('none'))
        out += [m[0], m[1]]; tds.append(m[2]); tv = tv + f' ({m[3]})'
    out += [tv, ' / '.join(tds[1:])]
    print('| ' + ' | '.join(out) + ' |')
# MagicPIG cells' own plain rates and noise
for key in sorted(mp):
    mn = next(r for r in mp[key] if r[3].startswith('none'))
    print('MP', key, mn[6], mn[8])
rows = [r for d in (ab, mp) for rs in d.values() for r in rs]
bad = [r for r in rows if r[-1] != f'{r[2]}/{r[2]}']
print('rows', len(rows), 'not identical', len(bad))
