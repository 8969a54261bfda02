// The test profile's models: a tiny random source retriever and domain LLM over the collection's words.
// Command: templates/make_tiny.sh; one task per row of PLAN's tasks/MAKE_TINY.json.
process MAKE_TINY {
    tag "${row.id}"
    label 'process_low'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(collection, stageAs: 'collection')

    output:
    tuple val(row), path("${row.id}"), emit: models
    path 'versions.yml', topic: versions

    script:
    template 'make_tiny.sh'

    stub:
    template 'stub/make_tiny.sh'
}
