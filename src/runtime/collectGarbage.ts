// A nudge to the garbage collector during long transfers. Bun's collector does not see the
// native memory behind Buffers (socket reads, decryption, gunzip output), so a download's garbage
// piles up until something else triggers a collection: a 200 MB vasprun.xml took the process from
// 44 MB to over 110 MB; a collection every 4 MB held it near 80 MB, at no measurable cost in time. Elsewhere (Node.js, Deno) there
// is nothing to call and nothing to do: their collectors account for that memory.

type Collect = (synchronous: boolean) => void;

const collect: Collect | undefined = (globalThis as { Bun?: { gc?: Collect } }).Bun?.gc;

/** Returns a function to call with each chunk's size; it collects every `everyBytes`. */
export function collectEvery(everyBytes: number): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    if (!collect) return;
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    collect(true);
  };
}
