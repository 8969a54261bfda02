// Layer-wise linear merge of the source retriever and the domain LLM (alpha = the source's weight per half).
// Command: templates/merge.sh; one task per row of PLAN's tasks/MERGE.json.
process MERGE {
    tag "${row.id}"
    label 'process_high'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(domain, stageAs: 'domain'), path(source, stageAs: 'source')

    output:
    tuple val(row), path("${row.id}"), emit: model
    path 'versions.yml', topic: versions

    script:
    template 'merge.sh'

    stub:
    template 'stub/merge.sh'
}
