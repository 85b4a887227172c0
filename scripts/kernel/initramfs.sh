#!/usr/bin/env bash
# Builds the test VM's initramfs: busybox, the module, the publisher (with
# the shared libraries it links, when it is not static) and the in-VM
# scripts of guest/. Usage: initramfs.sh VIGIA_KO PUBLISHER OUT.cpio.gz [BENCH]
# (BENCH: the publisher's source_bench example, for --bench).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ko=${1:?usage: initramfs.sh VIGIA_KO PUBLISHER OUT.cpio.gz}
pub=${2:?}
out=${3:?}

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,etc,proc,sys,dev,tmp,lib/modules,vigia}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [[ -e $root/bin/$applet ]] || ln -s busybox "$root/bin/$applet"
done
cp "$ko" "$root/lib/modules/vigia.ko"
bench=${4:-}
cp "$pub" "$root/usr/bin/vigia-publisher"
[[ -z $bench ]] || cp "$bench" "$root/usr/bin/vigia-source-bench"
# A dynamically linked program brings its libraries and loader along.
for bin in "$pub" ${bench:+"$bench"}; do
  ldd "$bin" >/dev/null 2>&1 || continue
  ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
done
cp "$here/guest/init" "$root/init"
chmod +x "$root/init"
cp "$here"/guest/*.sh "$root/vigia/"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
mknod -m 600 "$root/dev/console" c 5 1
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out"
