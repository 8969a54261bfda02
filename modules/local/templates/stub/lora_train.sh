mkdir ${row.id}
touch ${row.id}/adapter_config.json ${row.id}/adapter_model.safetensors ${row.id}/provenance.json
echo '- process: ${task.process}' > versions.yml
