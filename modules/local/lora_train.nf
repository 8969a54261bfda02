// The LoRA baseline: Tevatron's contrastive recipe on the source retriever, stopped at the paper's max_steps.
// Command: templates/lora_train.sh, which writes the row's recipe (PLAN's, from the experiment's `lora:`) to
// recipe.json for `--recipe`; one task per row of PLAN's tasks/LORA_TRAIN.json.
process LORA_TRAIN {
    tag "${row.id}"
    label 'process_gpu'

    input:
    tuple val(row), path(deepspeed_config, stageAs: 'deepspeed.json'), path(model, stageAs: 'model'), path(train, stageAs: 'train')

    output:
    tuple val(row), path("${row.id}"), emit: adapter
    path 'versions.yml', emit: versions

    script:
    template 'lora_train.sh'

    stub:
    template 'stub/lora_train.sh'
}
