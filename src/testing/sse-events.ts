// Reading a Server-Sent Events answer of `tessera serve` as a client does (the load test and the
// server tests): events are separated by a blank line, and each of the server's events is one
// `data: …` line — a JSON chunk, an error object, or `[DONE]`.

/** The data of each event of an SSE body, in order, as it arrives. Stops when the body ends or the
 *  consumer stops reading (`break` cancels the body, which closes the connection). */
export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string, void, void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      const events = buffered.split('\n\n');
      buffered = events.pop()!;                      // an event still arriving
      for (const e of events) if (e.startsWith('data: ')) yield e.slice('data: '.length);
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
