// A Hugging Face model pinned to a commit (or copied from a local upstream-format folder) + provenance.json.
// Command: templates/download_model.sh; one task per row of PLAN's tasks/DOWNLOAD_MODEL.json.
process DOWNLOAD_MODEL {
    tag "${row.id}"
    label 'process_low'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: model
    path 'versions.yml', topic: versions

    script:
    template 'download_model.sh'

    stub:
    template 'stub/download_model.sh'
}
