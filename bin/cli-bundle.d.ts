// Types of cli-bundle.js for the build script and the tests (bin/guru.js loads the .js as it is).
export function cliBundleEntry(dir: string): string | undefined;
