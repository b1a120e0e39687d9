//! An OSCQuery client nobody here wrote (Python's requests and websockets) and what it must
//! find: shared by tests/rig.rs (from another host) and tests/hostile.rs (on loopback).

use serde_json::{json, Value};

/// Reads the namespace and HOST_INFO, one value and a missing address, then LISTENs to
/// `/audio/bpm` for 2 s and IGNOREs it; prints one JSON line. Argument: the base URL.
pub const SCRIPT: &str = r#"
import asyncio, json, sys, time
import requests, websockets
base = sys.argv[1]
root = requests.get(base + "/", timeout=5).json()
info = requests.get(base + "/?HOST_INFO", timeout=5).json()
types = {}
def walk(n):
    if "TYPE" in n:
        types[n["FULL_PATH"]] = n["TYPE"]
    for c in n.get("CONTENTS", {}).values():
        walk(c)
walk(root)
bpm = requests.get(base + "/audio/bpm", timeout=5).json()
missing = requests.get(base + "/audio/nothing", timeout=5).status_code
async def stream():
    got, after = [], 0
    async with websockets.connect(base.replace("http://", "ws://") + "/") as ws:
        await ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/audio/bpm"}))
        end = time.time() + 2
        while time.time() < end:
            try:
                m = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
            except asyncio.TimeoutError:
                break
            if isinstance(m, bytes):
                got.append(m.hex())
        await ws.send(json.dumps({"COMMAND": "IGNORE", "DATA": "/audio/bpm"}))
        # What was already sent or queued here when IGNORE arrived is read first (0.5 s)…
        end = time.time() + 0.5
        while time.time() < end:
            try:
                await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
            except asyncio.TimeoutError:
                break
        # …then nothing more may come.
        end = time.time() + 1
        while time.time() < end:
            try:
                m = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.time()))
            except asyncio.TimeoutError:
                break
            after += 1
    return got, after
got, after = asyncio.run(stream())
print(json.dumps({"types": types, "host_info": info, "bpm": bpm, "missing": missing, "stream": got, "after_ignore": after}))
"#;

/// What the client must have found: every SPEC address with its exact type string, HOST_INFO
/// naming `name` and the control-over-OSC port `osc_port`, a streamed `/audio/bpm` and nothing
/// after IGNORE.
pub fn check(r: &Value, name: &str, osc_port: u16) {
    let types = r["types"].as_object().unwrap();
    for a in vj::oscquery::namespace::spec_addresses() {
        assert_eq!(types.get(&a.path), Some(&json!(a.types)), "{}", a.path);
    }
    let want = [
        ("/audio/levels", "ffffffff"),
        ("/audio/bpm", "ff"),
        ("/audio/phase", "ffff"),
        ("/audio/count", "iii"),
        ("/audio/kick", "if"),
        ("/karaoke/track", "issssfi"),
        ("/karaoke/categories/calm", "f"),
    ];
    for (path, t) in want {
        assert_eq!(types[path], t, "{path}");
    }
    assert_eq!(r["host_info"]["NAME"], name);
    assert_eq!(r["host_info"]["OSC_TRANSPORT"], "UDP");
    assert_eq!(r["host_info"]["OSC_PORT"], osc_port);
    assert_eq!(r["host_info"]["EXTENSIONS"]["LISTEN"], true);
    assert_eq!(r["bpm"]["ACCESS"], 1);
    assert_eq!(
        r["bpm"]["VALUE"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r["bpm"]
    );
    assert_eq!(r["missing"], 404);
    let stream = r["stream"].as_array().unwrap();
    assert!(
        stream.len() >= 50,
        "{} /audio/bpm values in 2 s",
        stream.len()
    );
    for hex in stream {
        let hex = hex.as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let msgs = vj::osc::decode(&bytes).unwrap();
        assert_eq!(
            (msgs[0].address.as_str(), msgs[0].types.as_str()),
            ("/audio/bpm", "ff")
        );
    }
    assert_eq!(r["after_ignore"], 0, "IGNORE stops the stream");
}
