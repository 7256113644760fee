#!/bin/sh
# The git side of the guides' fake forge (guide_lab): the post-receive hook of its bare
# repository. For each pushed ref it delivers a push webhook the way Gitea or GitHub does
# (headers and payload fields from /work/shared/fixtures/FORGE-FACTS.md sections 1.1, 1.5, 2.1,
# 2.2), to the webhook the guide's web-UI step configured (FORGE_DIR/webhook.env, written by
# fake_forge_ui.sh). Like the forges: no webhook configured, or the push event not selected,
# means no delivery; a form content type sends `payload=<json>` (which Switchyard refuses).
# Every delivery and its answer is appended to FORGE_DIR/deliveries.log ("Recent Deliveries").
# Usage: fake_forge_push_hook.sh gitea|github FORGE_DIR OWNER/NAME CLONE_URL  (stdin: git's)
set -u
forge=$1 dir=$2 repo=$3 clone=$4
conf=$dir/webhook.env
[ -r "$conf" ] || exit 0
# shellcheck disable=SC1090
. "$conf"
case ",$EVENTS," in *,push,*) ;; *) exit 0 ;; esac
log=$dir/deliveries.log
while read -r old new ref; do
  [ -n "$ref" ] || continue
  id=$(cat /proc/sys/kernel/random/uuid)
  if [ "$forge" = gitea ]; then
    body=$(printf '{"ref":"%s","before":"%s","after":"%s","compare_url":"","commits":[],"total_commits":1,"repository":{"id":1,"full_name":"%s","clone_url":"%s","default_branch":"main","private":false},"pusher":{"login":"alice","username":"alice"},"sender":{"login":"alice","username":"alice"}}' \
      "$ref" "$old" "$new" "$repo" "$clone")
  else
    created=false
    case "$old" in *[!0]*) ;; *) created=true ;; esac
    body=$(printf '{"ref":"%s","before":"%s","after":"%s","created":%s,"deleted":false,"forced":false,"base_ref":null,"compare":"","commits":[],"head_commit":null,"repository":{"id":1,"full_name":"%s","clone_url":"%s","default_branch":"main","private":false},"pusher":{"name":"alice"},"sender":{"login":"alice"}}' \
      "$ref" "$old" "$new" "$created" "$repo" "$clone")
  fi
  sig=""
  if [ -n "$SECRET" ]; then
    sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$SECRET" | sed 's/^.*= *//')
  fi
  if [ "$CONTENT_TYPE" = "application/json" ]; then
    data=$body
  else
    data="payload=$(printf '%s' "$body" | jq -sRr @uri)"
  fi
  if [ "$forge" = gitea ]; then
    set -- -H "X-Gitea-Delivery: $id" -H "X-Gitea-Event: push" -H "X-Gitea-Event-Type: push" \
      -H "X-Gitea-Signature: $sig" -H "X-Hub-Signature-256: sha256=$sig" \
      -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: $id"
  else
    set -- -H "X-GitHub-Delivery: $id" -H "X-GitHub-Event: push" \
      -H "X-Hub-Signature-256: sha256=$sig" -H "User-Agent: GitHub-Hookshot/fake"
  fi
  answer=$(curl -sS --max-time 10 -o - -w ' HTTP %{http_code}' -H "Content-Type: $CONTENT_TYPE" \
    "$@" --data-binary "$data" "$URL" 2>&1)
  printf '%s %s %s: %s\n' "$id" "$ref" "$new" "$answer" >>"$log"
done
exit 0
