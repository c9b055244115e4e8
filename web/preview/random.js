// wasi:random/random for the component in the page: the browser's own generator
// (crypto.getRandomValues, which fills at most 65536 bytes per call).
'use strict';

const MAX_CHUNK = 65536;

export const random = {
  getRandomBytes(len) {
    const out = new Uint8Array(Number(len));
    for (let i = 0; i < out.length; i += MAX_CHUNK) crypto.getRandomValues(out.subarray(i, i + MAX_CHUNK));
    return out;
  },
  getRandomU64() {
    const words = crypto.getRandomValues(new BigUint64Array(1));
    return words[0];
  },
};
