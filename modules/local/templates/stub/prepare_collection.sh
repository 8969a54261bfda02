mkdir -p ${row.id}/qrels
touch ${row.id}/corpus.jsonl ${row.id}/queries.jsonl ${row.id}/collection.json
echo '- process: ${task.process}' > versions.yml
