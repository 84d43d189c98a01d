// Types of long-running-commands.js for the build script and the tests (bin/guru.js loads the .js as it is).
export const longRunningCommands: Readonly<Record<string, string>>;
