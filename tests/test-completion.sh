#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# shell-completion/bash/poolctl under the real bash-completion: what a <Tab> offers after a
# given command line. busctl and poolctl are stand-ins on PATH that log their calls, so the
# test shows that pool IDs come from `poolctl list` of the bus named on the command line, and
# that nothing calls the daemon while its name is not owned (a call would start it). Skips
# (77) without bash-completion. Prints TAP-style lines.
set -u
source "$(dirname "$0")/tap.sh"

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly BASH_COMPLETION=/usr/share/bash-completion/bash_completion
[ -r "$BASH_COMPLETION" ] || { echo "Needs bash-completion." >&2; exit 77; }

dir=$(mktemp -d) || exit 99
trap 'rm -rf "$dir"' EXIT
mkdir "$dir/bin" "$dir/files"
# busctl SCOPE status NAME: owned when $dir/owned exists. poolctl SCOPE --no-legend list: two pools.
cat >"$dir/bin/busctl" <<STUB
#!/bin/sh
echo "busctl \$*" >>"$dir/calls"
[ -e "$dir/owned" ]
STUB
cat >"$dir/bin/poolctl" <<STUB
#!/bin/sh
echo "poolctl \$*" >>"$dir/calls"
printf '%s\n' "llama-7b   ready    yes yes 0 4/4 b4000 pool-engine-llama-7b.service 42 -" \
              "qwen-0.5b  stopped  no  no  0 -   -     -                            -  -"
STUB
chmod +x "$dir/bin/busctl" "$dir/bin/poolctl"
# JSON files and directories are offered for a PreparedEngine file (directories without the
# slash that a real completion adds), other files not.
touch "$dir/files/llama.json" "$dir/files/notes.txt"
mkdir "$dir/files/pools.d"

# complete LINE: what _poolctl offers for LINE (the word under the cursor is the last one;
# a trailing space starts a new, empty word), sorted, on one line.
complete_line() {
        (
                cd "$dir/files" || exit 1
                PATH=$dir/bin:$PATH
                source "$BASH_COMPLETION"
                source "$TOP/shell-completion/bash/poolctl"
                COMP_LINE=$1
                COMP_POINT=${#COMP_LINE}
                read -r -a COMP_WORDS <<<"$COMP_LINE"
                [[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMPREPLY=()
                # compopt complains outside a real completion: its options do not matter here.
                _poolctl poolctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}" 2>/dev/null
                printf '%s\n' "${COMPREPLY[@]}" | sort | xargs
        )
}

# expect LINE WANTED: the offer for LINE is exactly WANTED.
expect() {
        local got
        got=$(complete_line "$1")
        if [ "$got" = "$2" ]; then
                ok "'$1<Tab>' offers '$2'"
        else
                not_ok "'$1<Tab>' offers '$2', got '$got'"
        fi
}

check "the script defines the completion for poolctl" \
        bash -c 'source "$1"; source "$2"; complete -p poolctl | grep -q -- "-F _poolctl"' sh \
        "$BASH_COMPLETION" "$TOP/shell-completion/bash/poolctl"

expect "poolctl " "drain lease list logs preload release reload reset status stop"
expect "poolctl re" "release reload reset"
expect "poolctl --user st" "status stop"
expect "poolctl --j" "--json"
expect "poolctl --dead" "--deadline="
expect "poolctl status --no-l" "--no-legend"
expect "poolctl --deadline " ""
expect "poolctl drain --deadline=" ""
expect "poolctl list " ""

rm -f "$dir/calls"
expect "poolctl status " ""
check "daemon not running: only busctl status was asked, never the daemon" \
        sh -c '[ "$(cat "$1")" = "busctl --system status org.llorch.PoolManager1" ]' sh "$dir/calls"

touch "$dir/owned"
rm -f "$dir/calls"
expect "poolctl status " "llama-7b qwen-0.5b"
check "pool IDs come from poolctl --system --no-legend list" grep -qx "poolctl --system --no-legend list" "$dir/calls"
rm -f "$dir/calls"
expect "poolctl --user stop ll" "llama-7b"
check "with --user, the user bus is asked" \
        sh -c 'grep -qx "busctl --user status org.llorch.PoolManager1" "$1" &&
               grep -qx "poolctl --user --no-legend list" "$1"' sh "$dir/calls"
expect "poolctl logs -n 20 q" "qwen-0.5b"
expect "poolctl drain --deadline 5000 " "llama-7b qwen-0.5b"
expect "poolctl reload llama-7b " "llama.json pools.d"
expect "poolctl preload " "llama.json pools.d"
expect "poolctl stop llama-7b " ""

tap_end
