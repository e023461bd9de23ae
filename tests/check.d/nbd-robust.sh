#!/usr/bin/env bash
# xvm nbd against hostile and careless clients (a small python3 client
# speaking the protocol by hand): junk handshakes, lying lengths, requests
# out of range or too large, unknown commands and flags, a client that
# vanishes mid-request, pipelined floods, read-only writes, too many
# clients; the server answers with errors and keeps serving. Finally
# SIGTERM with acknowledged writes in flight: the server exits 0 and every
# acknowledged write is in the file.
set -u
: "${XVM:?}"
command -v python3 >/dev/null || { echo "python3 not installed"; exit 77; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; sleep 0.2; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

serve() {
	local name=$1 img=$2; shift 2
	timeout 300 "$XVM" nbd --fork --pid-file "$tmp/$name.pid" -k "$tmp/$name.sock" "$@" "$img" ||
		fail "xvm nbd did not start"
	pids+=("$(cat "$tmp/$name.pid")")
}

cat >"$tmp/client.py" <<'PY'
import os, socket, struct, sys, time, random

OPT_MAGIC = 0x49484156454F5054
REP_MAGIC = 0x3e889045565a9
ERR = lambda n: (1 << 31) + n
EINVAL, EPERM, ENOSPC = 22, 1, 28

def die(msg):
    print("FAIL:", msg); sys.exit(1)

class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(20)
        self.s.connect(path)
    def recv(self, n):
        b = b""
        while len(b) < n:
            d = self.s.recv(n - len(b))
            if not d: raise EOFError("server closed")
            b += d
        return b
    def closed(self):
        """True if the server closes the connection (within the timeout)."""
        try:
            while self.s.recv(65536): pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    def hello(self, cflags=3):
        magic, opt, hflags = struct.unpack(">QQH", self.recv(18))
        assert magic == 0x4e42444d41474943 and opt == OPT_MAGIC and hflags & 1
        self.s.sendall(struct.pack(">I", cflags))
    def opt(self, opt, data=b""):
        self.s.sendall(struct.pack(">QII", OPT_MAGIC, opt, len(data)) + data)
    def reply(self):
        magic, opt, typ, ln = struct.unpack(">QIII", self.recv(20))
        assert magic == REP_MAGIC, hex(magic)
        return opt, typ, self.recv(ln)
    def replies(self):
        out = []
        while True:
            r = self.reply(); out.append(r)
            if r[1] == 1 or r[1] & (1 << 31): return out
    def go(self, name=b"", structured=True, meta=True):
        if structured:
            self.opt(8); assert self.reply()[1] == 1
        if meta:
            q = b"base:allocation"
            self.opt(10, struct.pack(">I", len(name)) + name + struct.pack(">II", 1, len(q)) + q)
            r = self.replies(); assert r[-1][1] == 1 and r[0][1] == 4, r
        self.opt(7, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
        r = self.replies()
        assert r[-1][1] == 1, r
        for _, t, d in r:
            if t == 3 and struct.unpack(">H", d[:2])[0] == 0:
                self.size, self.tflags = struct.unpack(">QH", d[2:12])
        self.structured = structured
    def req(self, typ, off, ln, flags=0, payload=b"", cookie=None):
        cookie = cookie if cookie is not None else random.getrandbits(64)
        self.s.sendall(struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, ln) + payload)
        return cookie
    def answer(self):
        """Reads one whole reply: (cookie, error, data-bytes-or-chunks)."""
        magic = struct.unpack(">I", self.recv(4))[0]
        if magic == 0x67446698:
            err, cookie = struct.unpack(">IQ", self.recv(12))
            return cookie, err, None
        assert magic == 0x668e33ef, hex(magic)
        chunks, err = [], 0
        while True:
            flags, typ, cookie, ln = struct.unpack(">HHQI", self.recv(16))
            data = self.recv(ln)
            if typ & (1 << 15): err = struct.unpack(">I", data[:4])[0]
            chunks.append((typ, data))
            if flags & 1: return cookie, err, chunks
            magic = struct.unpack(">I", self.recv(4))[0]
            assert magic == 0x668e33ef
    def read(self, off, ln, flags=0):
        c = self.req(0, off, ln, flags)
        cookie, err, chunks = self.answer()
        assert cookie == c
        if err: return err, None
        buf = bytearray(ln)
        for typ, d in chunks:
            if typ == 1:
                o = struct.unpack(">Q", d[:8])[0] - off; buf[o:o + len(d) - 8] = d[8:]
            elif typ == 2:
                o, n = struct.unpack(">QI", d[:12]); buf[o - off:o - off + n] = bytes(n)
        return 0, bytes(buf), chunks
    def simple(self, typ, off, ln, flags=0, payload=b""):
        c = self.req(typ, off, ln, flags, payload)
        cookie, err, _ = self.answer()
        assert cookie == c
        return err

def check_alive(path):
    c = Conn(path); c.hello(); c.go()
    e, data, _ = c.read(0, 4096)
    assert e == 0
    c.req(2, 0, 0)

def hostile(path, size):
    # 1: junk instead of the client flags and options.
    c = Conn(path); c.recv(18); c.s.sendall(os.urandom(4096))
    if not c.closed(): die("junk handshake not dropped")
    check_alive(path)
    # 2: unknown client flags.
    c = Conn(path); c.hello(cflags=0x80)
    if not c.closed(): die("unknown client flags not dropped")
    # 3: an option claiming 4 GiB of data, then the client goes away.
    c = Conn(path); c.hello(); c.s.sendall(struct.pack(">QII", OPT_MAGIC, 7, 0xffffffff) + b"x" * 100); c.s.close()
    # 4: a bad option magic.
    c = Conn(path); c.hello(); c.s.sendall(struct.pack(">QII", 0x1234, 7, 0))
    if not c.closed(): die("bad option magic not dropped")
    # 5: lying lengths inside options get NBD_REP_ERR_INVALID; the session goes on.
    c = Conn(path); c.hello()
    c.opt(7, struct.pack(">I", 1000) + b"ab" + struct.pack(">H", 0))
    if c.reply()[1] != ERR(3): die("INFO with a lying name length not refused")
    c.opt(10, struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", 50) + b"base")
    if c.reply()[1] != ERR(3): die("SET_META_CONTEXT before STRUCTURED_REPLY not refused")
    c.opt(99, b"whatever")
    if c.reply()[1] != ERR(1): die("unknown option not ERR_UNSUP")
    c.opt(3, b"junk")
    if c.reply()[1] != ERR(3): die("LIST with data not refused")
    c.opt(8)
    c.reply()
    c.opt(10, struct.pack(">I", 0) + struct.pack(">I", 2) + struct.pack(">I", 100) + b"base:allocation")
    if c.reply()[1] != ERR(3): die("truncated query list not refused")
    c.opt(7, struct.pack(">I", 5) + b"nope!" + struct.pack(">H", 0))
    if c.reply()[1] != ERR(6): die("unknown export not ERR_UNKNOWN")
    c.opt(65536 * 2, bytes(70000))
    if c.reply()[1] != ERR(9): die("oversized option not ERR_TOO_BIG")
    c.go()
    e, data, _ = c.read(0, 512)
    if e: die("read after recovered handshake failed")
    c.req(2, 0, 0)
    # 6: EXPORT_NAME with a wrong name ends the session.
    c = Conn(path); c.hello(); c.opt(1, b"no-such-export")
    if not c.closed(): die("wrong EXPORT_NAME not dropped")

    # 7: transmission-phase abuse on one connection that must stay usable.
    c = Conn(path); c.hello(); c.go()
    assert c.size == size
    if c.read(size - 100, 200)[0] != EINVAL: die("read past the end not EINVAL")
    if c.read(2**64 - 512, 1024)[0] != EINVAL: die("read with wrapping offset not EINVAL")
    if c.read(0, 64 << 20)[0] != EINVAL: die("64 MiB read not EINVAL")
    if c.simple(1, size - 10, 20, payload=bytes(20)) not in (EINVAL, ENOSPC): die("write past the end accepted")
    if c.simple(1, 0, 40 << 20, payload=bytes(40 << 20)) != EINVAL: die("40 MiB write not EINVAL")
    if c.simple(42, 0, 0) != EINVAL: die("unknown command not EINVAL")
    if c.simple(3, 0, 0, flags=0x8000) != EINVAL: die("unknown flag not EINVAL")
    # Block status must answer with extents covering the hole and data.
    cookie = c.req(7, 0, size)
    _, err, chunks = c.answer()
    if err or chunks[0][0] != 5: die("block status failed")
    ext = chunks[0][1][4:]
    if len(ext) < 16: die("block status returned a single extent for a mixed image")
    # Write, write zeroes, trim, FUA, flush: data reads back.
    pat = bytes([0xA5]) * 65536
    if c.simple(1, 65536, 65536, flags=1, payload=pat): die("FUA write failed")
    if c.read(65536, 65536)[1] != pat: die("written data not read back")
    if c.simple(6, 65536, 4096, flags=2): die("write zeroes NO_HOLE failed")
    if c.read(65536, 4096)[1] != bytes(4096): die("write zeroes did not zero")
    if c.simple(4, 69632, 4096): die("trim failed")
    if c.simple(3, 0, 0): die("flush failed")
    # A read of a hole comes back as a hole chunk.
    e, data, chunks = c.read(size - 1048576, 1048576)
    if e or data != bytes(1048576) or not any(t == 2 for t, _ in chunks): die("hole read without a hole chunk")
    # Pipelining: 300 requests before reading any reply.
    cookies = set(c.req(0, (i % 64) * 4096, 4096, cookie=i) for i in range(300))
    got = set()
    for _ in range(300):
        cookie, err, _ = c.answer()
        if err: die("pipelined read failed")
        got.add(cookie)
    if got != cookies: die("pipelined replies lost or duplicated")
    c.req(2, 0, 0)
    # 8: a client vanishing in the middle of a write payload.
    c = Conn(path); c.hello(); c.go()
    c.s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 1, 1, 0, 1 << 20) + b"y" * 1000)
    c.s.close()
    # 9: a bad request magic ends the connection.
    c = Conn(path); c.hello(); c.go()
    c.s.sendall(os.urandom(28))
    if not c.closed(): die("bad request magic not dropped")
    # 10: a client that sends a flood and never reads (the server must not
    # buffer without bound; we just check it survives).
    c = Conn(path); c.hello(); c.go(); c.s.setblocking(False)
    try:
        for i in range(100000):
            c.s.send(struct.pack(">IHHQQI", 0x25609513, 0, 0, i, 0, 1 << 20))
    except (BlockingIOError, socket.timeout):
        pass
    c.s.close()
    check_alive(path)
    print("ok: hostile clients refused; server still serving")

def readonly(path):
    c = Conn(path); c.hello(); c.go()
    if not c.tflags & 2: die("read-only flag not set")
    if c.simple(1, 0, 512, payload=bytes(512)) != EPERM: die("write on read-only export not EPERM")
    if c.simple(6, 0, 512) != EPERM: die("write zeroes on read-only export not EPERM")
    if c.read(0, 512)[0]: die("read on read-only export failed")
    c.req(2, 0, 0)
    print("ok: read-only export answers EPERM to writes")

def shared(path, n):
    conns = []
    for i in range(n):
        c = Conn(path); c.hello(); c.go(); conns.append(c)
    extra = Conn(path)
    try:
        extra.recv(18)
        die("connection beyond --shared served")
    except (EOFError, ConnectionResetError):
        pass
    for c in conns:
        if c.read(0, 512)[0]: die("shared client read failed")
        c.req(2, 0, 0)
    print("ok: --shared %d: %d clients served, one more refused" % (n, n))

def acked_writes(path, pidfile):
    c = Conn(path); c.hello(); c.go()
    for i in range(16):
        if c.simple(1, i << 20, 1 << 20, payload=bytes([i + 1]) * (1 << 20)): die("write failed")
    # Acknowledged, never flushed by the client: SIGTERM must put them on disk.
    os.kill(int(open(pidfile).read()), 15)
    print("ok: 16 MiB written and acknowledged, SIGTERM sent")

cmd = sys.argv[1]
if cmd == "hostile": hostile(sys.argv[2], int(sys.argv[3]))
elif cmd == "readonly": readonly(sys.argv[2])
elif cmd == "shared": shared(sys.argv[2], int(sys.argv[3]))
elif cmd == "acked": acked_writes(sys.argv[2], sys.argv[3])
PY

img=$tmp/disk.raw
truncate -s 16M "$img"
head -c 1M /dev/urandom | dd of="$img" bs=1M seek=4 conv=notrunc status=none
serve h "$img" --persistent
timeout 120 python3 "$tmp/client.py" hostile "$tmp/h.sock" $((16 * 1048576)) || fail "hostile client run"
kill -0 "${pids[-1]}" || fail "server died"

serve ro "$img" --persistent --read-only
timeout 60 python3 "$tmp/client.py" readonly "$tmp/ro.sock" || fail "read-only run"
serve sh "$img" --persistent --shared 3
timeout 60 python3 "$tmp/client.py" shared "$tmp/sh.sock" 3 || fail "shared run"

dst=$tmp/acked.raw
truncate -s 16M "$dst"
serve ack "$dst" --persistent
pid=${pids[-1]}
timeout 60 python3 "$tmp/client.py" acked "$tmp/ack.sock" "$tmp/ack.pid" || fail "acked-writes run"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "server did not exit after SIGTERM"
[ -e "$tmp/ack.sock" ] && fail "socket not removed on exit"
python3 - "$dst" <<'PY' || fail "acknowledged writes missing after SIGTERM"
import sys
d = open(sys.argv[1], "rb").read()
for i in range(16):
    assert d[i << 20:(i + 1) << 20] == bytes([i + 1]) * (1 << 20), i
PY
echo "ok: every acknowledged write is in the file after SIGTERM"
# Bad command lines: one line naming the problem, non-zero status.
for args in "--bogus $img" "-p 99999 $img" "-p" "" "$tmp/nonexistent" "--shared 0 $img" \
	"-k $tmp/dir-does-not-exist/x.sock $img" "-f vmdk $img" "$img $img"; do
	timeout 10 "$XVM" nbd $args >/dev/null 2>"$tmp/err"; rc=$?
	if [ $rc -eq 0 ] || [ $rc -ge 124 ] || [ "$(grep -c . "$tmp/err")" -ne 1 ]; then
		cat "$tmp/err"; fail "xvm nbd $args -> exit $rc"
	fi
	echo "ok: xvm nbd $args -> $rc: $(cat "$tmp/err")"
done
echo "all nbd robustness checks passed"
