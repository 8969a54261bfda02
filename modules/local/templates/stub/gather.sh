mkdir ${row.id}
cp -r parts/*/. ${row.id}/
echo '- process: ${task.process}' > versions.yml
