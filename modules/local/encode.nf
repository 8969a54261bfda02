// Embeddings of a collection's eval split for the source, a merged model or the source + a LoRA adapter.
// Command: templates/encode.sh; one task per row of PLAN's tasks/ENCODE.json.
process ENCODE {
    tag "${row.id}"
    label 'process_gpu'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(adapter, stageAs: 'adapter'), path(collection, stageAs: 'collection'), path(model, stageAs: 'model')

    output:
    tuple val(row), path("${row.id}"), emit: embeddings
    path 'versions.yml', topic: versions

    script:
    template 'encode.sh'

    stub:
    template 'stub/encode.sh'
}
