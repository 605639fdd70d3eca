# Sourced by gpu-common.sh on the GPU machine, and by bench/peers/run.sh for nativereft. NVRTC and cuBLAS may
# live in the CUDA toolkit or in Python wheels (nvidia-*-cu13) rather than on the loader path: put every folder
# that holds one on LD_LIBRARY_PATH (the driver's libcuda.so.1 is already there).
roots=(/usr/local /opt /usr/lib/x86_64-linux-gnu)
if command -v python3 >/dev/null; then
  site="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)"
  [[ -n $site ]] && roots+=("$site/nvidia")
fi
libdirs="$(find -L "${roots[@]}" -maxdepth 8 \( -name 'libnvrtc.so.1[0-9]*' -o -name 'libcublas.so.1[0-9]*' -o -name 'libcublasLt.so.1[0-9]*' \) 2>/dev/null \
  | xargs -r -n 1 dirname | sort -u | paste -sd: -)"
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
