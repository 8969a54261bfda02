echo '{"alpha_lower": 1.0, "alpha_upper": 1.0, "selection": "stub"}' > alpha.json
cat > arm.json <<'MERGEIR_ARM'
${row.arm}
MERGEIR_ARM
plan.py chosen --arm arm.json --alpha alpha.json --out ${row.id}
echo '- process: ${task.process}' > versions.yml
