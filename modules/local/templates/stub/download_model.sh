mkdir ${row.id}
touch ${row.id}/config.json ${row.id}/provenance.json
echo '- process: ${task.process}' > versions.yml
