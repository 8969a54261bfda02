mkdir -p ${row.id}/points
touch ${row.id}/grid.json
echo '- process: ${task.process}' > versions.yml
