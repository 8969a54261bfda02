// Seeded samples of labelled queries from a training set: the limited-data trials v1..vN, and (included as
// SAMPLE_FULL) the full setting's sample when the experiment caps it (e.g. 1,000 queries).
// Command: templates/make_trials.sh; one task per row of PLAN's tasks/MAKE_TRIALS.json.
process MAKE_TRIALS {
    tag "${row.id}"
    label 'process_single'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(train, stageAs: 'train')

    output:
    tuple val(row), path("${row.id}"), emit: trials
    path 'versions.yml', topic: versions

    script:
    template 'make_trials.sh'

    stub:
    template 'stub/make_trials.sh'
}
