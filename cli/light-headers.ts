// Node's global Headers is a lazy property: the first read loads Node's
// bundled HTTP client (undici), about as much CPU as the rest of a cold
// `guru run` takes. Connect only needs a header map, so the short-lived
// technician commands install a small, complete implementation of the Fetch
// standard's Headers (headers-polyfill) as the global before anything reads
// it. The long-running commands keep Node's own.
import { Headers } from "headers-polyfill";

/**
 * Installs the light Headers as the global. Call it before anything reads
 * globalThis.Headers. A plain assignment: reading the property's descriptor,
 * or redefining it, would load undici first.
 */
export function useLightHeaders(): void {
  globalThis.Headers = Headers as unknown as typeof globalThis.Headers;
}
