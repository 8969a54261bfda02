mkdir ${row.id}
touch ${row.id}/report.md
echo '- process: ${task.process}' > versions.yml
