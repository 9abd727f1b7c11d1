// Encrypted attachments (the `file` object of the Matrix spec, version v2), as Element makes
// and reads them: AES-256-CTR with a random key, a 16-byte counter block whose last 8 bytes
// start at zero, and the SHA-256 of the ciphertext; base64 without padding, the key as a JWK.
import { createHash, webcrypto } from "node:crypto";

const subtle = webcrypto.subtle;

function b64(bytes) {
    return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
}

function unb64(s) {
    return new Uint8Array(Buffer.from(s.replace(/-/g, "+").replace(/_/g, "/"), "base64"));
}

export function sha256Hex(bytes) {
    return createHash("sha256").update(bytes).digest("hex");
}

export async function encryptAttachment(plain) {
    const iv = new Uint8Array(16);
    webcrypto.getRandomValues(iv.subarray(0, 8));
    const key = await subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt", "decrypt"]);
    const jwk = await subtle.exportKey("jwk", key);
    const cipher = new Uint8Array(await subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, plain));
    const hash = createHash("sha256").update(cipher).digest();
    return {
        cipher,
        file: {
            v: "v2",
            key: { kty: "oct", key_ops: ["encrypt", "decrypt"], alg: "A256CTR", k: jwk.k, ext: true },
            iv: b64(iv),
            hashes: { sha256: b64(hash) },
        },
    };
}

export async function decryptAttachment(cipher, file) {
    if (file.v !== "v2") throw new Error(`attachment version ${file.v} is not v2`);
    const want = file.hashes?.sha256;
    const got = b64(createHash("sha256").update(cipher).digest());
    if (!want || want !== got) throw new Error(`ciphertext SHA-256 ${got} is not the event's ${want}`);
    const key = await subtle.importKey("jwk", file.key, { name: "AES-CTR" }, false, ["decrypt"]);
    const iv = unb64(file.iv);
    return new Uint8Array(await subtle.decrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, cipher));
}
