// Every labelled query of the train split with the source model's top-ranked non-relevant documents as hard
// negatives (Tevatron jsonl + sidecar): the full setting's set, and the pool the limited trials come from.
// Command: templates/prepare_training.sh; one task per row of PLAN's tasks/PREPARE_TRAINING.json.
process PREPARE_TRAINING {
    tag "${row.id}"
    label 'process_gpu'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(collection, stageAs: 'collection'), path(model, stageAs: 'model')

    output:
    tuple val(row), path("${row.id}"), emit: train
    path 'versions.yml', topic: versions

    script:
    template 'prepare_training.sh'

    stub:
    template 'stub/prepare_training.sh'
}
