import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";

export interface Certs {
  caCert: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A throwaway PKI for one test cluster: a CA, the API server's serving certificate for 127.0.0.1,
 * an admin client certificate in system:masters, and the service-account signing key.
 */
export function generateCerts(dir: string): Certs {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(dir, [
    "req",
    "-x509",
    "-new",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "30",
    "-subj",
    "/CN=crd-backup-test-ca",
  ]);

  const sign = (name: string, subject: string, ext: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(dir, ["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject]);
    openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      `${name}.crt`,
      "-days",
      "30",
      "-extfile",
      `${name}.ext`,
    ]);
  };
  sign(
    "apiserver",
    "/CN=kube-apiserver",
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  sign("admin", "/O=system:masters/CN=crd-backup-admin", "extendedKeyUsage=clientAuth\n");
  openssl(dir, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key"]);
  openssl(dir, ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);

  const p = (f: string) => path.join(dir, f);
  return {
    caCert: p("ca.crt"),
    serverCert: p("apiserver.crt"),
    serverKey: p("apiserver.key"),
    adminCert: p("admin.crt"),
    adminKey: p("admin.key"),
    serviceAccountKey: p("sa.key"),
    serviceAccountPub: p("sa.pub"),
  };
}
