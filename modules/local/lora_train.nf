// The LoRA baseline: Tevatron's contrastive recipe on the source retriever, stopped at the paper's max_steps.
// Command: templates/lora_train.sh, which writes the row's recipe (PLAN's, from the experiment's `lora:`) to
// recipe.json for `--recipe`; one task per row of PLAN's tasks/LORA_TRAIN.json.
process LORA_TRAIN {
    tag "${row.id}"
    label 'process_gpu'
    publishDir path: { "${params.outdir}/" + task.ext.publish.replace('{collection}', "${row.collection}") }, mode: params.publish_dir_mode,
        saveAs: { filename -> filename == 'versions.yml' || (task.ext.intermediate && params.publish_intermediates.toString() != 'true') ? null : filename }

    input:
    tuple val(row), path(deepspeed_config, stageAs: 'deepspeed.json'), path(model, stageAs: 'model'), path(train, stageAs: 'train')

    output:
    tuple val(row), path("${row.id}"), emit: adapter
    path 'versions.yml', topic: versions

    script:
    template 'lora_train.sh'

    stub:
    template 'stub/lora_train.sh'
}
