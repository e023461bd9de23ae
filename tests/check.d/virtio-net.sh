#!/usr/bin/env bash
# virtio-net with user-mode networking (libslirp) on the software CPU: DHCP,
# an HTTP fetch from a server on the host's loopback (10.0.2.2 from the
# guest) with a matching checksum, and a host-forwarded port reaching a
# guest listener.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/check.d/virtio-common.inc
need python3
guest_kit_find
emu_check

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir "$work/www"
head -c 1048576 /dev/urandom >"$work/www/blob"
sum=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
http_port=$(free_port)
python3 -m http.server "$http_port" --bind 127.0.0.1 --directory "$work/www" >"$work/http.log" 2>&1 &
pids+=($!)
fwd_port=$(free_port)

cmd="modprobe virtio_pci; modprobe virtio_net; ip link set eth0 up; udhcpc -i eth0 -q -n -t 5 && echo XVM-DHCP-OK; ip -4 addr show eth0; wget -q -O /tmp/blob http://10.0.2.2:$http_port/blob && echo SUM=\$(sha256sum /tmp/blob); echo XVM-FWD-REPLY | nc -l -p 8080; echo XVM-FWD-DONE"
GUEST_TIMEOUT=110 guest_run "$work/guest.log" "$cmd" --net "user,hostfwd=tcp:127.0.0.1:$fwd_port-:8080" &
vm=$!
pids+=("$vm")

# Wait for the guest's listener (after the download), then connect.
reply=
for _ in $(seq 1 240); do
	if grep -q "^SUM=" "$work/guest.log" 2>/dev/null; then
		sleep 2
		reply=$(python3 - "$fwd_port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
data = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    data += d
print(data.decode(errors="replace").strip())
PY
)
		break
	fi
	kill -0 "$vm" 2>/dev/null || break
	sleep 1
done
wait "$vm"
grep -q "XVM-DHCP-OK" "$work/guest.log" || { echo "DHCP failed"; tail -n 40 "$work/guest.log"; exit 1; }
grep -q "10.0.2.15" "$work/guest.log" || { echo "guest did not get 10.0.2.15"; exit 1; }
grep -q "SUM=$sum" "$work/guest.log" || { echo "HTTP download checksum mismatch or failed"; tail -n 40 "$work/guest.log"; exit 1; }
[ "$reply" = "XVM-FWD-REPLY" ] || { echo "hostfwd did not reach the guest listener (got '$reply')"; exit 1; }
echo "virtio-net: DHCP, HTTP download ($sum) and hostfwd pass"
