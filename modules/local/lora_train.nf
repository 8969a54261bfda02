// The LoRA baseline: Tevatron's contrastive recipe on the source retriever, stopped at the paper's max_steps.
process LORA_TRAIN {
    tag "${meta.id}"
    label 'process_gpu'

    input:
    tuple val(meta), path(model), path(train), path(sidecar), val(recipe)
    val lora
    path deepspeed_config

    output:
    tuple val(meta), path('adapter'), emit: adapter
    path 'versions.yml',              emit: versions

    script:
    def ds_opt = deepspeed_config ? "--deepspeed ${deepspeed_config}" : ''
    def instruction = recipe.query_instruction.replace("'", "'\\''")
    def checkpointing = lora.gradient_checkpointing == 'true' ? '--gradient-checkpointing' : '--no-gradient-checkpointing'
    """
    lora_train.py \\
        --model ${model} \\
        --train ${train} \\
        --out adapter \\
        --max-steps ${meta.max_steps} \\
        --pooling ${recipe.pooling} \\
        --query-instruction '${instruction}' \\
        --lora-r ${lora.lora_r} \\
        --lora-alpha ${lora.lora_alpha} \\
        --lora-dropout ${lora.lora_dropout} \\
        --lora-target-modules ${lora.target_modules} \\
        --temperature ${lora.temperature} \\
        --group-size ${lora.group_size} \\
        --per-device-batch ${lora.per_device_batch} \\
        --grad-accum ${lora.grad_accum} \\
        --lr ${lora.lr} \\
        --warmup-ratio ${lora.warmup_ratio} \\
        --warmup-type ${lora.warmup_type} \\
        --query-max-length ${lora.query_max_length} \\
        --passage-max-length ${lora.passage_max_length} \\
        --precision ${lora.precision} \\
        --seed ${lora.seed} \\
        --device ${params.device} \\
        --no-progress \\
        ${checkpointing} ${ds_opt}
    plan.py versions --process ${task.process} --out versions.yml
    """

    stub:
    """
    mkdir adapter
    touch adapter/adapter_config.json adapter/adapter_model.safetensors adapter/provenance.json
    echo '"${task.process}": {mergeir: stub}' > versions.yml
    """
}
