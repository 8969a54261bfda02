// The LoRA baseline: one adapter per (collection, setting, trial) on the source retriever.
include { taskRows; withInputs; artifactsOf } from './utils'
include { LORA_TRAIN } from '../../modules/local/lora_train'

workflow LORA_ARM {
    take:
    tasks      // path: PLAN's task folder
    available  // [id, path]: models, training sets and the experiment's local files (DeepSpeed config)

    main:
    LORA_TRAIN(withInputs(taskRows(tasks, 'LORA_TRAIN'), ['deepspeed_config', 'model', 'train'], available))

    artifacts = artifactsOf(LORA_TRAIN.out.adapter)  // [id, adapter folder]

    emit:
    artifacts
}
