// A Hugging Face model pinned to a commit (or copied from a local upstream-format folder) + provenance.json.
// Command: templates/download_model.sh; one task per row of PLAN's tasks/DOWNLOAD_MODEL.json.
process DOWNLOAD_MODEL {
    tag "${row.id}"
    label 'process_low'

    input:
    tuple val(row), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: model
    path 'versions.yml', emit: versions

    script:
    template 'download_model.sh'

    stub:
    template 'stub/download_model.sh'
}
