// The host key decision for one hop: known, new (ask or accept), changed or revoked (refuse).
import { NeedsPersonError, RemoteError } from "../errors.ts";
import { appendKnownHost, checkHostKey, type KnownHostEntry, knownHostsName } from "./knownHosts.ts";
import type { Prompter } from "./prompter.ts";
import type { ResolvedHop } from "./resolve.ts";

export interface HostKeyDecisionInput {
  hop: ResolvedHop;
  entries: readonly KnownHostEntry[];
  /** The raw public key blob the server presented. */
  key: Buffer;
  prompter: Prompter;
  acceptNewHostKey: boolean;
}

export interface HostKeyAdded {
  host: string;
  port: number;
  fingerprint: string;
  file: string;
}

/** "ssh-ed25519" → "ED25519", "ecdsa-sha2-nistp256" → "ECDSA", "ssh-rsa" → "RSA", as ssh prints them. */
function keyTypeLabel(keyType: string): string {
  if (keyType === "ssh-ed25519") return "ED25519";
  if (keyType.startsWith("ecdsa-")) return "ECDSA";
  if (keyType === "ssh-rsa") return "RSA";
  if (keyType === "ssh-dss") return "DSA";
  return keyType.toUpperCase();
}

function changedHostKeyMessage(o: {
  display: string;
  keyType: string;
  fingerprint: string;
  file: string;
  line: number;
}): string {
  const bar = "@".repeat(59);
  const label = keyTypeLabel(o.keyType);
  return [
    bar,
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    bar,
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
    "It is also possible that a host key has just been changed.",
    `The fingerprint for the ${label} key sent by the remote host ${o.display} is`,
    `${o.fingerprint}.`,
    "Please contact your system administrator.",
    `Add correct host key in ${o.file} to get rid of this message.`,
    `Offending ${label} key in ${o.file}:${o.line}`,
    "Host key verification failed.",
  ].join("\n");
}

/**
 * Resolves with what was added to known_hosts (null when the key was already known); throws
 * RemoteError (changed, revoked, refused) or NeedsPersonError (new key, nobody to confirm it).
 */
export async function verifyHostKey(input: HostKeyDecisionInput): Promise<HostKeyAdded | null> {
  const { hop, entries, key, prompter } = input;
  const name = hop.hostKeyAlias ?? hop.hostname;
  const port = hop.hostKeyAlias ? 22 : hop.port;
  const display = knownHostsName(name, port);
  const check = checkHostKey(entries, name, port, key);
  switch (check.status) {
    case "known":
      return null;
    case "revoked":
      throw new RemoteError(
        `the ${keyTypeLabel(check.keyType)} host key of ${display} (${check.fingerprint}) is marked @revoked in ${check.entry.file}:${check.entry.line}. Host key verification failed.`,
      );
    case "changed":
      throw new RemoteError(
        changedHostKeyMessage({
          display,
          keyType: check.keyType,
          fingerprint: check.fingerprint,
          file: check.entry.file,
          line: check.entry.line,
        }),
        {
          hint: `If the new key is expected (ask the cluster's admins), remove the old one with: ssh-keygen -R '${display}' -f ${check.entry.file}`,
        },
      );
    case "unknown": {
      const file = hop.knownHostsFiles[0];
      const lines = [
        `The authenticity of host '${display}' can't be established.`,
        `${keyTypeLabel(check.keyType)} key fingerprint is ${check.fingerprint}.`,
      ];
      if (check.otherKeyTypes.length > 0) {
        lines.push(
          `This host is known by other key types (${check.otherKeyTypes.join(", ")}), and now presents a new one.`,
        );
      }
      let accepted = input.acceptNewHostKey && check.otherKeyTypes.length === 0;
      if (!accepted) {
        if (!prompter.interactive) {
          throw new NeedsPersonError(
            `${lines.join("\n")}\nThere is no terminal to confirm it.`,
            "Compare the fingerprint with the one your cluster publishes, then run again in a terminal or with --accept-new-host-key.",
          );
        }
        accepted = await prompter.confirm(
          `${lines.join("\n")}\nAre you sure you want to continue connecting (yes/no)? `,
        );
        if (!accepted)
          throw new RemoteError(`host key of ${display} not accepted. Host key verification failed.`);
      }
      if (file === undefined) return null;
      await appendKnownHost(file, name, port, key, { hash: hop.hashKnownHosts });
      return { host: name, port, fingerprint: check.fingerprint, file };
    }
  }
}
