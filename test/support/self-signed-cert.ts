// A throwaway TLS certificate for 127.0.0.1 and localhost (P-256, one day),
// made with openssl in the given directory, for the TLS test and the
// https/wss rows of the OpenSSH benchmark.
import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** Writes key.pem and cert.pem into `dir` and returns their paths. */
export function makeSelfSignedCert(dir: string): { keyPath: string; certPath: string } {
  const keyPath = join(dir, "key.pem");
  const certPath = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
    { stdio: "ignore" },
  );
  return { keyPath, certPath };
}
