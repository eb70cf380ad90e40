import { Command } from "commander";
import { generateKey, writeNewKey } from "../../src/crypto/keys.ts";
import { printLines } from "../output.ts";

type Flags = { output?: string; pq?: boolean };

/** Like age-keygen: a new identity (mode 0600, never over an existing file), and its recipient. */
export function keygenCommand(): Command {
  return new Command("keygen")
    .description(
      "write a new age identity (private key) and print its recipient, the public key snapshots are encrypted to",
    )
    .option("-o, --output <file>", "write the identity to this file (mode 0600; refuses an existing file)")
    .option("--pq", "a post-quantum hybrid key (ML-KEM-768 + X25519; recipient age1pq1…)")
    .action(async (flags: Flags) => {
      if (flags.output) {
        const recipient = await writeNewKey(flags.output, { postQuantum: flags.pq });
        printLines([recipient]);
        return;
      }
      // as age-keygen does without -o: the identity on stdout, the public key on stderr
      const { file, recipient } = await generateKey({ postQuantum: flags.pq });
      process.stdout.write(file);
      process.stderr.write(`Public key: ${recipient}\n`);
    });
}
