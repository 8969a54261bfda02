mkdir ${row.id}
touch ${row.id}/train.jsonl ${row.id}/train.jsonl.json
echo '- process: ${task.process}' > versions.yml
