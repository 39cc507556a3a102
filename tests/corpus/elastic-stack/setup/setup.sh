#!/usr/bin/env bash
# Set the built-in users' passwords once Elasticsearch answers.
set -euo pipefail
until curl -s -u "elastic:${ELASTIC_PASSWORD}" http://elasticsearch:9200 >/dev/null; do sleep 2; done
curl -fsS -u "elastic:${ELASTIC_PASSWORD}" -H 'Content-Type: application/json' \
  -X POST http://elasticsearch:9200/_security/user/kibana_system/_password \
  -d "{\"password\":\"${KIBANA_SYSTEM_PASSWORD}\"}"
echo "setup: done"
