// Rank the eval split with the embeddings and score it: run.trec + metrics.json, tagged with the task's arm.
// Command: templates/evaluate.sh; one task per row of PLAN's tasks/EVALUATE.json.
process EVALUATE {
    tag "${row.id}"
    label 'process_medium'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(collection, stageAs: 'collection'), path(embeddings, stageAs: 'embeddings')

    output:
    tuple val(row), path("${row.id}"), emit: results
    path 'versions.yml', topic: versions

    script:
    template 'evaluate.sh'

    stub:
    template 'stub/evaluate.sh'
}
