// Embeddings of a collection's eval split for the source, a merged model or the source + a LoRA adapter.
// Command: templates/encode.sh; one task per row of PLAN's tasks/ENCODE.json.
process ENCODE {
    tag "${row.id}"
    label 'process_gpu'

    input:
    tuple val(row), path(adapter, stageAs: 'adapter'), path(collection, stageAs: 'collection'), path(model, stageAs: 'model')

    output:
    tuple val(row), path("${row.id}"), emit: embeddings
    path 'versions.yml', emit: versions

    script:
    template 'encode.sh'

    stub:
    template 'stub/encode.sh'
}
