// Prints a TOTP code the test cluster has not seen (for otp_command lines and SSH_ASKPASS).
import { totpCode } from "./cluster.ts";

process.stdout.write(`${await totpCode()}\n`);
