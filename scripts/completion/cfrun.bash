# bash completion for cfrun(1).                                  -*- shell-script -*-
#
# Installed as /usr/share/bash-completion/completions/cfrun; from a source checkout:
#   source scripts/completion/cfrun.bash; export CFRUN_SCRIPTS_DIR=$PWD/scripts
# zsh: autoload -U +X bashcompinit && bashcompinit, then source this file.
#
# Completes cfrun's options, examples for --every/--jitter/--cron, file names, the scripts of
# the scripts directory ($CFRUN_SCRIPTS_DIR, default /usr/share/cfrun/scripts) by full path,
# the options of `cfrun --fake-api`, and the options of a script of that directory (from its
# `--help`; no other script is ever run). docs/completion.md; spec/completion_spec.lua.

# cfrun's own options (every one `cfrun --help` lists), and those that take a value.
_cfrun_options='-e -l -i --job --every --cron --jitter --max-failures --lock --log-file
  --quiet --json --sandbox --fake-api -v --version -h --help -- -'
_cfrun_value_options=' -e -l --every --cron --jitter --max-failures --lock --log-file '

# `cfrun --fake-api`'s options (lua/cloudflare/fake_api.lua's USAGE), and those with a value.
_cfrun_fake_options='--host --port --sandbox --seed --any-zone --token --email --key
  --latency --rate-limit --one-user --generations --exit-with-parent --quiet --help'
_cfrun_fake_value_options=' --host --port --seed --token --email --key --latency --rate-limit
  --generations '

# COMPREPLY+= the words of $1 (whitespace-separated) that start with $2.
_cfrun_words() {
    local w
    for w in $1; do
        [[ $w == "$2"* ]] && COMPREPLY+=("$w")
    done
}

# Tells readline that the words are file names (a / after a directory, the list shows names).
_cfrun_filenames() {
    if type compopt >/dev/null 2>&1; then compopt -o filenames 2>/dev/null; fi
}

# COMPREPLY+= file names (and directories) starting with $1.
_cfrun_files() {
    local f
    _cfrun_filenames
    while IFS= read -r f; do
        COMPREPLY+=("$f")
    done < <(compgen -f -- "$1")
}

# The scripts directory, resolved (symbolic links followed); fails when it does not exist.
_cfrun_scripts_dir() {
    (cd -P -- "${CFRUN_SCRIPTS_DIR:-/usr/share/cfrun/scripts}" 2>/dev/null && pwd -P)
}

# COMPREPLY+= the full paths of the scripts directory's *.lua starting with $1; when $1 has no
# slash and no file name matched it, also those whose name starts with it (dem -> .../demo.lua).
_cfrun_scripts() {
    local dir f g seen cur=$1 had=${#COMPREPLY[@]}
    dir=${CFRUN_SCRIPTS_DIR:-/usr/share/cfrun/scripts}
    dir=${dir%/}
    [[ -d $dir ]] || return 0
    for f in "$dir"/*.lua; do
        [[ -f $f ]] || continue
        if [[ $f == "$cur"* ]] ||
            [[ -n $cur && $cur != */* && $had -eq 0 && ${f##*/} == "$cur"* ]]; then
            seen=0
            for g in "${COMPREPLY[@]}"; do [[ $g == "$f" ]] && seen=1; done
            ((seen)) || COMPREPLY+=("$f")
        fi
    done
    _cfrun_filenames
}

# The script word $1 as a path of a *.lua directly in the scripts directory, or fails: only
# such a script is ever run for its --help.
_cfrun_trusted_script() {
    local file=$1 dir base sdir
    [[ $file == "~/"* ]] && file=$HOME/${file#"~/"}
    case $file in # as typed in the README: $CFRUN_SCRIPTS_DIR/demo.lua
        '$CFRUN_SCRIPTS_DIR/'* | '${CFRUN_SCRIPTS_DIR}/'*)
            file=${CFRUN_SCRIPTS_DIR:-/usr/share/cfrun/scripts}/${file#*/} ;;
    esac
    [[ $file == *.lua && -f $file && -r $file && ! -L $file ]] || return 1
    base=${file##*/}
    if [[ $file == */* ]]; then dir=${file%/*}; else dir=.; fi
    dir=$(cd -P -- "${dir:-/}" 2>/dev/null && pwd -P) || return 1
    sdir=$(_cfrun_scripts_dir) || return 1
    [[ -n $sdir && $dir == "$sdir" ]] || return 1
    printf '%s\n' "$dir/$base"
}

# The cfrun to run for a script's --help: the command typed when it is a cfrun, else PATH's.
_cfrun_binary() {
    local cmd=${COMP_WORDS[0]} d IFS=:
    [[ $cmd == "~/"* ]] && cmd=$HOME/${cmd#"~/"}
    if [[ $cmd == */cfrun && -x $cmd && -f $cmd ]]; then
        printf '%s\n' "$cmd"
        return 0
    fi
    for d in $PATH; do
        if [[ -n $d && -x $d/cfrun && -f $d/cfrun ]]; then
            printf '%s\n' "$d/cfrun"
            return 0
        fi
    done
    return 1
}

# Prints "OPTION ARG" (ARG "-" for none) for each option line of the trusted script $1's help:
# lines of two spaces, then --name, then an optional argument name, then two spaces or the end.
_cfrun_script_options() {
    local bin line rest name arg
    bin=$(_cfrun_binary) || return 0
    while IFS= read -r line; do
        [[ $line == "  --"[[:alnum:]]* ]] || continue
        rest=${line#"  "}
        name=${rest%% *}
        rest=${rest#"$name"}
        arg=-
        if [[ $rest == " "[![:space:]]* ]]; then
            arg=${rest#" "}
            arg=${arg%% *}
        fi
        printf '%s %s\n' "$name" "$arg"
    done < <(if command -v timeout >/dev/null 2>&1; then
                 timeout 5 "$bin" "$1" --help </dev/null 2>/dev/null
             else
                 "$bin" "$1" --help </dev/null 2>/dev/null
             fi)
}

# Completes the value $2 of option $1 (of cfrun, of --fake-api, or of a script: ARG is $3).
_cfrun_value() {
    local opt=$1 cur=$2 arg=$3 e
    case $opt in
        --every | --jitter)
            _cfrun_words '30s 1m 5m 15m 30m 1h 1h30m 6h 12h 1d' "$cur" ;;
        --cron) # quoted as one word, in the quote the word opened (single by default)
            local q="'"
            [[ $cur == '"'* ]] && q='"'
            for e in '*/5 * * * *' '*/15 * * * *' '0 * * * *' '0 3 * * *' '30 2 * * mon-fri' \
                '0 0 1 * *'; do
                [[ $q$e$q == "$cur"* ]] && COMPREPLY+=("$q$e$q")
            done ;;
        --max-failures) _cfrun_words '1 3 5 10' "$cur" ;;
        --lock | --log-file | --seed) _cfrun_files "$cur" ;;
        -e | -l | --token | --email | --key | --zone) ;;
        --host) _cfrun_words '127.0.0.1 0.0.0.0 ::1' "$cur" ;;
        --port) _cfrun_words '0 8787' "$cur" ;;
        --latency) _cfrun_words '0 0.05 0.5 1' "$cur" ;;
        --rate-limit) _cfrun_words '1200/300 10/1' "$cur" ;;
        --generations) _cfrun_words 'v1,v2 v1 v2' "$cur" ;;
        --format) _cfrun_words 'table json jsonl csv' "$cur" ;;
        --vendor) _cfrun_words 'aws azure gcp oci' "$cur" ;;
        *)
            case $arg in
                PATH | FILE | INVENTORY | JOURNAL) _cfrun_files "$cur" ;;
            esac ;;
    esac
}

_cfrun() {
    local -a cw=("${COMP_WORDS[@]}") script_opts=() values=()
    local cword=$COMP_CWORD cur=${COMP_WORDS[COMP_CWORD]}
    local mode=cfrun i=1 w vi file o a
    local -A script_args=()
    COMPREPLY=()

    # Walk the words before the cursor: cfrun's options, up to --fake-api (the rest is the
    # server's) or the script (the rest is its own; after --, the next word is the script);
    # `--opt=value` arrives as three words, `--opt`, `=` and the value.
    while ((i < cword)); do
        w=${cw[i]}
        vi=0
        case $mode in
            cfrun | dashdash)
                if [[ $mode == cfrun && $w == --fake-api ]]; then
                    mode=fake
                elif [[ $mode == cfrun && $w == -- ]]; then
                    mode=dashdash
                elif [[ $mode == cfrun && $_cfrun_value_options == *" $w "* ]]; then
                    vi=$((i + 1))
                elif [[ $mode == dashdash || $w != -* || $w == - ]]; then
                    mode=script
                    if file=$(_cfrun_trusted_script "$w"); then
                        while read -r o a; do
                            script_opts+=("$o")
                            script_args[$o]=$a
                        done < <(_cfrun_script_options "$file")
                    fi
                fi ;;
            fake)
                [[ $_cfrun_fake_value_options == *" $w "* ]] && vi=$((i + 1)) ;;
            script)
                [[ $w == --* && -n ${script_args[$w]} && ${script_args[$w]} != - ]] && vi=$((i + 1)) ;;
        esac
        if ((vi)); then
            [[ ${cw[vi]} == "=" ]] && vi=$((vi + 1))
            if ((vi >= cword)); then # the cursor is on this option's value
                [[ $cur == "=" ]] && cur=""
                _cfrun_value "$w" "$cur" "${script_args[$w]}"
                return 0
            fi
            i=$vi
        fi
        i=$((i + 1))
    done

    # `--opt=value` as one word (a COMP_WORDBREAKS without `=`, or zsh): the value, prefixed.
    if [[ ($mode == fake || $mode == script) && $cur == --?*=* ]]; then
        o=${cur%%=*}
        _cfrun_value "$o" "${cur#*=}" "${script_args[$o]}"
        values=("${COMPREPLY[@]}")
        COMPREPLY=()
        for a in "${values[@]}"; do COMPREPLY+=("$o=$a"); done
        return 0
    fi

    case $mode in
        cfrun | dashdash)
            if [[ $mode == cfrun && $cur == -* ]]; then
                _cfrun_words "$_cfrun_options" "$cur"
            else
                _cfrun_files "$cur"
                _cfrun_scripts "$cur"
            fi ;;
        fake)
            _cfrun_words "$_cfrun_fake_options" "$cur" ;;
        script)
            if [[ $cur == -* && ${#script_opts[@]} -gt 0 ]]; then
                for o in "${script_opts[@]}"; do
                    [[ $o == "$cur"* ]] && COMPREPLY+=("$o")
                done
            else
                _cfrun_files "$cur"
            fi ;;
    esac
    return 0
}

complete -F _cfrun cfrun
