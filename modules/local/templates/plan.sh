cat > params.json <<'MERGEIR_PARAMS'
${plan_params}
MERGEIR_PARAMS
plan.py tasks --experiment experiment.yaml --params params.json --out tasks --no-check-paths
versions.py --process ${task.process} --out versions.yml
