mkdir -p ${row.id}/source ${row.id}/domain
touch ${row.id}/source/config.json ${row.id}/domain/config.json
echo '- process: ${task.process}' > versions.yml
