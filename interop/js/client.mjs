// The Matrix user of TestEncryptedInteropElementCrypto (bridge/encrypted_interop_test.go):
// matrix-js-sdk with its Rust crypto (@matrix-org/matrix-sdk-crypto-wasm), the crypto stack
// Element Web ships. It logs in a new device with a password, sets up cross-signing the way
// Element does on a first login, and is then driven by the Go test over stdin/stdout, one JSON
// object a line.
//
// Environment: CW_HOMESERVER (base URL), CW_USER (full user ID), CW_PASSWORD, CW_BOT (the
// bridge bot's user ID, whose device encrypts the puppets' messages), CW_LOG_LEVEL (the SDK's
// log level on stderr; default "warn"), CW_RECOVERY: unset, cross-signing is set up anew;
// "create", it is set up anew and its keys kept in secret storage under a new recovery key,
// which "ready" reports; a recovery key, the user's existing cross-signing keys are taken from
// secret storage with it and sign this device (Element's "Verify with Security Key" on a new
// login).
//
// Out (stdout): {"kind":"ready", ...}, {"kind":"invite", ...}, {"kind":"event", ...} for every
// room event the client sees (again whenever its decryption changes), {"kind":"reply","id":N,...}
// for each command, {"kind":"fatal","error":...} before exiting on an error.
// In (stdin): {"id":N,"cmd":"join"|"send"|"redact"|"send_image"|"isolation"|"scrollback"|"stop", ...};
// see commands below.
import "./stderr-console.mjs";

import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";

import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";
import { AllDevicesIsolationMode, OnlySignedDevicesIsolationMode } from "matrix-js-sdk/lib/crypto-api/index.js";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/recovery-key.js";

import { decryptAttachment, encryptAttachment, sha256Hex } from "./attachment.mjs";

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

function fatal(err) {
    emit({ kind: "fatal", error: String(err?.stack ?? err) });
    process.exit(1);
}

process.on("unhandledRejection", fatal);
// Node ends a module whose top-level await can never settle with code 13, silently.
process.on("exit", (code) => {
    if (code === 13) emit({ kind: "fatal", error: "a top-level await never settled (something waited for an event that never came)" });
});

function env(name) {
    const v = process.env[name];
    if (!v) fatal(new Error(`${name} is not set`));
    return v;
}

const homeserver = env("CW_HOMESERVER");
const userId = env("CW_USER");
const password = env("CW_PASSWORD");
const bot = process.env.CW_BOT;
const recovery = process.env.CW_RECOVERY || "";
logger.setLevel(process.env.CW_LOG_LEVEL || "warn");

// The secret storage keys this client holds: one it created, or the one its recovery key opens.
const secretKeys = new Map();
const cryptoCallbacks = {
    cacheSecretStorageKey: (keyId, _info, key) => secretKeys.set(keyId, key),
    getSecretStorageKey: async ({ keys }) => {
        for (const keyId of Object.keys(keys)) {
            if (secretKeys.has(keyId)) return [keyId, secretKeys.get(keyId)];
        }
        if (recovery && recovery !== "create") {
            const keyId = Object.keys(keys)[0];
            return [keyId, decodeRecoveryKey(recovery)];
        }
        return null;
    },
};

// EventShieldColour and EventShieldReason of matrix-js-sdk's crypto API, by value.
const shieldColours = ["none", "grey", "red"];
const shieldReasons = ["unknown", "unverified_identity", "unsigned_device", "unknown_device",
    "authenticity_not_guaranteed", "mismatched_sender_key", "sent_in_clear", "verification_violation"];

async function login() {
    const anon = sdk.createClient({ baseUrl: homeserver });
    const resp = await anon.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: userId },
        password,
        initial_device_display_name: "matrix-js-sdk interop (Element's crypto)",
    });
    return sdk.createClient({
        baseUrl: homeserver, userId: resp.user_id, deviceId: resp.device_id, accessToken: resp.access_token,
        cryptoCallbacks,
    });
}

const client = await login();
await client.initRustCrypto({ useIndexedDB: false });
const crypto = client.getCrypto();

// What Element does after the first login: cross-signing keys, uploaded with the password
// (user-interactive auth), and this device signed with them (with "create", kept in secret
// storage once the client syncs, below).
if (!recovery || recovery === "create") {
    await crypto.bootstrapCrossSigning({
        setupNewCrossSigning: true,
        authUploadDeviceSigningKeys: async (makeRequest) => {
            try {
                await makeRequest(null);
            } catch (e) {
                const session = e?.data?.session;
                if (!session) throw e;
                await makeRequest({
                    type: "m.login.password", session, password,
                    identifier: { type: "m.id.user", user: userId },
                });
            }
        },
    });
}

// ---- what the client sees -------------------------------------------------------------

const reported = new Map(); // event ID -> the last report's signature

async function mediaOf(content) {
    if (!content || !["m.image", "m.file", "m.video", "m.audio"].includes(content.msgtype)) return undefined;
    try {
        if (content.file) {
            const cipher = await download(content.file.url);
            const plain = await decryptAttachment(cipher, content.file);
            return { encrypted_file: true, size: plain.length, sha256: sha256Hex(plain) };
        }
        if (content.url) {
            const plain = await download(content.url);
            return { encrypted_file: false, size: plain.length, sha256: sha256Hex(plain) };
        }
        return { error: "neither file nor url" };
    } catch (e) {
        return { error: String(e) };
    }
}

async function download(mxc) {
    // Authenticated media first (what Element uses on servers that have it), the legacy
    // endpoint otherwise.
    const tries = [
        [client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true), true],
        [client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, false), false],
    ];
    let last;
    for (const [url, auth] of tries) {
        if (!url) continue;
        const resp = await fetch(url, auth ? { headers: { Authorization: `Bearer ${client.getAccessToken()}` } } : {});
        if (resp.ok) return new Uint8Array(await resp.arrayBuffer());
        last = `${resp.status} from ${url}`;
    }
    throw new Error(`download of ${mxc} failed: ${last}`);
}

async function report(ev) {
    const roomId = ev.getRoomId();
    const eventId = ev.getId();
    if (!roomId || !eventId || eventId.startsWith("~")) return; // local echo
    const utd = ev.isDecryptionFailure();
    const out = {
        kind: "event",
        room_id: roomId,
        event_id: eventId,
        sender: ev.getSender(),
        type: ev.getType(),
        state_key: ev.getStateKey(),
        content: ev.getContent(),
        redacts: ev.event.redacts ?? ev.getContent()?.redacts,
        encrypted: ev.isEncrypted(),
        utd,
        redacted: ev.isRedacted(),
    };
    if (utd) out.utd_reason = String(ev.decryptionFailureReason ?? "");
    if (ev.isEncrypted() && !utd) {
        const info = await crypto.getEncryptionInfoForEvent(ev);
        if (info) {
            out.shield = { colour: shieldColours[info.shieldColour] ?? String(info.shieldColour),
                reason: info.shieldReason == null ? "" : (shieldReasons[info.shieldReason] ?? String(info.shieldReason)) };
        }
        const device = ev.getSenderKey() ? await senderDevice(ev.getSender(), ev.getSenderKey()) : undefined;
        if (device) out.sender_device = device;
    }
    const sig = JSON.stringify([out.type, out.utd, out.redacted, out.shield]);
    if (reported.get(eventId) === sig) return;
    reported.set(eventId, sig);
    const media = await mediaOf(out.content);
    if (media) out.media = media;
    emit(out);
}

// senderDevice names the device whose Curve25519 key established the session, the sender's
// or the bridge bot's (for puppets, which have no devices), with what this client knows of
// its verification.
async function senderDevice(sender, curve) {
    for (const user of new Set([sender, bot].filter(Boolean))) {
        const devices = await crypto.getUserDeviceInfo([user]);
        for (const [deviceId, d] of devices.get(user) ?? []) {
            if (d.getIdentityKey() === curve) {
                const status = await crypto.getDeviceVerificationStatus(user, deviceId);
                return { user_id: user, device_id: deviceId, cross_signed: !!status?.signedByOwner,
                    verified: !!status?.isVerified() };
            }
        }
    }
    return undefined;
}

const tracked = new WeakSet();

function track(ev) {
    if (tracked.has(ev)) return;
    tracked.add(ev);
    ev.on(sdk.MatrixEventEvent.Decrypted, () => report(ev).catch(fatal));
    ev.on(sdk.MatrixEventEvent.Replaced, () => report(ev).catch(fatal));
    const pending = ev.getDecryptionPromise?.();
    if (pending) pending.then(() => report(ev)).catch(fatal);
    else report(ev).catch(fatal);
}

client.on(sdk.ClientEvent.Event, track);
client.on(sdk.RoomEvent.MyMembership, (room, membership) => {
    if (membership !== "invite") return;
    const me = room.getMember(userId);
    emit({ kind: "invite", room_id: room.roomId, inviter: me?.events?.member?.getSender() ?? "",
        is_space: room.getType() === "m.space" });
});

// ---- commands -------------------------------------------------------------------------

async function waitRoomReady(roomId) {
    for (let i = 0; i < 300; i++) {
        const room = client.getRoom(roomId);
        if (room?.getMyMembership() === "join" && room.hasEncryptionStateEvent()
            && await crypto.isEncryptionEnabledInRoom(roomId)) return room;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`room ${roomId} is not joined and encrypted in this client after 30 s`);
}

const commands = {
    async join({ room_id }) {
        await client.joinRoom(room_id);
        await waitRoomReady(room_id);
        return {};
    },
    async send({ room_id, type, content }) {
        await waitRoomReady(room_id);
        const resp = await client.sendEvent(room_id, type, content);
        return { event_id: resp.event_id };
    },
    async redact({ room_id, event_id }) {
        await waitRoomReady(room_id);
        const resp = await client.redactEvent(room_id, event_id);
        return { event_id: resp.event_id };
    },
    async send_image({ room_id, path, mimetype, name }) {
        await waitRoomReady(room_id);
        const plain = new Uint8Array(await readFile(path));
        // Element's upload: encrypt in an encrypted room, upload the ciphertext, send `file`.
        const { cipher, file } = await encryptAttachment(plain);
        const up = await client.uploadContent(cipher, { type: "application/octet-stream", includeFilename: false });
        file.url = up.content_uri;
        const resp = await client.sendEvent(room_id, "m.room.message", {
            msgtype: "m.image", body: name, file, info: { mimetype, size: plain.length },
        });
        return { event_id: resp.event_id, sha256: sha256Hex(plain) };
    },
    // Element's "exclude insecure devices": show (and send to) only devices their owner
    // cross-signed; "all" is the default.
    async isolation({ mode }) {
        crypto.setDeviceIsolationMode(mode === "only_signed"
            ? new OnlySignedDevicesIsolationMode() : new AllDevicesIsolationMode(true));
        return {};
    },
    // Load the room's whole timeline from the homeserver (a new device's first sync holds only
    // its latest events) and report every event in it.
    async scrollback({ room_id }) {
        const room = await waitRoomReady(room_id);
        for (let i = 0; room.oldState.paginationToken !== null; i++) {
            if (i >= 50) throw new Error(`room ${room_id} has more than 50 pages`);
            await client.scrollback(room, 100);
        }
        const events = room.getLiveTimeline().getEvents();
        events.forEach(track);
        return { count: events.length };
    },
    async stop() {
        client.stopClient();
        setTimeout(() => process.exit(0), 10);
        return {};
    },
};

createInterface({ input: process.stdin }).on("line", async (line) => {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (e) {
        emit({ kind: "reply", id: -1, ok: false, error: `not JSON: ${line}` });
        return;
    }
    const run = commands[cmd.cmd];
    if (!run) {
        emit({ kind: "reply", id: cmd.id, ok: false, error: `unknown command ${cmd.cmd}` });
        return;
    }
    try {
        emit({ kind: "reply", id: cmd.id, ok: true, ...(await run(cmd)) });
    } catch (e) {
        emit({ kind: "reply", id: cmd.id, ok: false, error: String(e?.stack ?? e) });
    }
}).on("close", () => {
    client.stopClient();
    process.exit(0);
});

// ---- start ----------------------------------------------------------------------------

const prepared = new Promise((resolve) => client.once(sdk.ClientEvent.Sync, (state) => resolve(state)));
await client.startClient({ initialSyncLimit: 20 });
await prepared;

// Ready once the homeserver serves this device's keys: before that the bridge could not
// share a room key with it.
for (let i = 0; ; i++) {
    const resp = await client.http.authedRequest(sdk.Method.Post, "/keys/query", undefined,
        { device_keys: { [userId]: [client.getDeviceId()] } });
    if (resp.device_keys?.[userId]?.[client.getDeviceId()]) break;
    if (i > 300) fatal(new Error("this device's keys never reached the homeserver"));
    await new Promise((r) => setTimeout(r, 100));
}
let recoveryKey;
if (recovery === "create") {
    // Element's "Set up recovery": the cross-signing keys in secret storage under a new
    // recovery key. It waits for its account data to come back down /sync, so only now.
    const key = await crypto.createRecoveryKeyFromPassphrase();
    await crypto.bootstrapSecretStorage({ createSecretStorageKey: async () => key, setupNewSecretStorage: true });
    recoveryKey = key.encodedPrivateKey;
} else if (recovery) {
    // Element's "Verify with Security Key": the cross-signing keys from secret storage sign this
    // device. The import needs the user's public keys, which the first sync's key query fetches.
    for (let i = 0; ; i++) {
        try {
            await crypto.bootstrapCrossSigning({});
            break;
        } catch (e) {
            if (i > 100 || !String(e).includes("importCrossSigningKeys failed")) throw e;
            await new Promise((r) => setTimeout(r, 100));
        }
    }
    // The signature shows on this device's keys once the client has fetched them again (its
    // /sync says they changed).
    for (let i = 0; !(await crypto.getDeviceVerificationStatus(userId, client.getDeviceId()))?.signedByOwner; i++) {
        if (i > 300) fatal(new Error("this device's cross-signing signature never came back from the homeserver"));
        await new Promise((r) => setTimeout(r, 100));
    }
}
const keys = await crypto.getOwnDeviceKeys();
const own = await crypto.getDeviceVerificationStatus(userId, client.getDeviceId());
emit({ kind: "ready", user_id: userId, device_id: client.getDeviceId(), ed25519: keys.ed25519,
    curve25519: keys.curve25519, cross_signing_ready: await crypto.isCrossSigningReady(),
    cross_signed: !!own?.signedByOwner, recovery_key: recoveryKey });
