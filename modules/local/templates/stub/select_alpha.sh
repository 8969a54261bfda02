echo '{"alpha_lower": 1.0, "alpha_upper": 1.0, "selection": "stub"}' > alpha.json
plan.py chosen --tasks ${tasks} --select ${row.id} --alpha alpha.json --out ${row.id}
echo '- process: ${task.process}' > versions.yml
