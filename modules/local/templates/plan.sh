plan.py tasks --experiment ${experiment} --out tasks --dataset '${dataset}' --settings '${settings}' --alpha-selection '${alpha_selection}' --allow-unpinned '${allow_unpinned}' --device '${device}' --encode-shards '${encode_shards}' --sweep-shards '${sweep_shards}' --no-check-paths
versions.py --process ${task.process} --out versions.yml
