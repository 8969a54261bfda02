mkdir ${row.id}
touch ${row.id}/run.trec ${row.id}/metrics.json
echo '- process: ${task.process}' > versions.yml
