#!/bin/sh
# Stands in for a guide's steps in a forge's web UI (guides_test.sh runs it from the hidden
# `sh-lab` blocks of docs/*.md): each option is one field of the forge's form, so a guide that
# names a wrong value (a form content type, no push event, another secret) fails its test.
#   fake-forge-ui webhook --url URL --content-type TYPE --secret-file FILE --events a,b,c
# writes LAB_FORGE_DIR/webhook.env, which the fake forge's push hook reads.
set -eu
cmd=$1
shift
case "$cmd" in
  webhook)
    url='' type='' secret_file='' events=''
    while [ $# -gt 0 ]; do
      case "$1" in
        --url) url=$2 ;;
        --content-type) type=$2 ;;
        --secret-file) secret_file=$2 ;;
        --events) events=$2 ;;
        *) echo "fake-forge-ui: unknown option $1" >&2; exit 2 ;;
      esac
      shift 2
    done
    secret=$(cat "$secret_file")
    {
      printf 'URL=%s\n' "'$url'"
      printf 'CONTENT_TYPE=%s\n' "'$type'"
      printf 'SECRET=%s\n' "'$secret'"
      printf 'EVENTS=%s\n' "'$events'"
    } >"$LAB_FORGE_DIR/webhook.env"
    ;;
  *) echo "fake-forge-ui: unknown command $cmd" >&2; exit 2 ;;
esac
