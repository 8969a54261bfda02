// Rank the eval split with the embeddings and score it: run.trec + metrics.json, tagged with the task's arm.
// Command: templates/evaluate.sh; one task per row of PLAN's tasks/EVALUATE.json.
process EVALUATE {
    tag "${row.id}"
    label 'process_medium'

    input:
    tuple val(row), path(collection, stageAs: 'collection'), path(embeddings, stageAs: 'embeddings')

    output:
    tuple val(row), path("${row.id}"), emit: results
    path 'versions.yml', emit: versions

    script:
    template 'evaluate.sh'

    stub:
    template 'stub/evaluate.sh'
}
