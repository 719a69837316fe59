/**
 * Every `E_*` code a celeba-gan error can carry: one row per code, sorted by name, so that a new
 * code is one added line. The CLI exits with the row's status (usage 2: the command line names
 * something wrong and the user changes it; runtime 1: the run failed on the way). `meaning` and
 * `fix` are one line each; `npm run docs:errors` writes docs/errors.md from this table, and a
 * test fails when that file is stale. A code that is not here does not compile (CelebaGanError
 * takes an ErrorCode).
 */

export interface ErrorCodeInfo {
  /** `usage` exits with 2, `runtime` with 1. */
  readonly exit: 'usage' | 'runtime';
  /** What went wrong, in one line. */
  readonly meaning: string;
  /** The kind of fix; each error's own hint says the exact one. */
  readonly fix: string;
}

export const ERROR_CODES = Object.freeze({
  E_ABORTED: {
    exit: 'runtime',
    meaning: 'The work was stopped by Ctrl-C or SIGTERM before it finished; nothing half-written was kept.',
    fix: 'Run the command again (train: with --resume).',
  },
  E_ATTR_AMBIGUOUS: {
    exit: 'usage',
    meaning: 'prepare: two attribute files in the input, or a bare file name in the attribute file matches several images.',
    fix: 'Pass --attributes, or name the rows by their path inside the input.',
  },
  E_ATTR_CONFLICT: { exit: 'usage', meaning: 'An attribute request asks for an attribute both on and off.', fix: 'Keep one of Name and -Name.' },
  E_ATTR_COUNT_MISMATCH: {
    exit: 'runtime',
    meaning: "The attribute file's first line (the image count) disagrees with its number of rows.",
    fix: 'Fix the count line, or restore the missing rows.',
  },
  E_ATTR_DUPLICATE: { exit: 'usage', meaning: 'An attribute request names the same attribute twice.', fix: 'Name each attribute once.' },
  E_ATTR_FORMAT: {
    exit: 'runtime',
    meaning: "The attribute file is not in CelebA's list_attr_celeba.txt format (count line, names line, rows; the file and line are named).",
    fix: "Fix that line, or use CelebA's own list_attr_celeba.txt.",
  },
  E_ATTR_IMAGE_NO_ROW: {
    exit: 'runtime',
    meaning: 'prepare: images in the input have no row in the attribute file (up to 5 are named).',
    fix: 'Add their rows, or move those images out of the input.',
  },
  E_ATTR_MISSING: {
    exit: 'usage',
    meaning: 'prepare: the --attributes file does not exist, or --attr-subset was given without an attribute file.',
    fix: 'Pass the path of list_attr_celeba.txt with --attributes.',
  },
  E_ATTR_REQUEST: {
    exit: 'usage',
    meaning: 'An attribute request (generate --attr, serve attr=) is malformed: an empty name or a stray sign.',
    fix: 'Write names separated by commas, each optionally preceded by - (for example Smiling,-Male).',
  },
  E_ATTR_ROW_NO_IMAGE: {
    exit: 'runtime',
    meaning: 'prepare: a row of the attribute file names an image the input does not have.',
    fix: 'Use the attribute file that matches the images, or drop those rows.',
  },
  E_ATTR_UNKNOWN: {
    exit: 'usage',
    meaning:
      'An attribute name (prepare --attr-subset, generate --attr) is not in the attribute file, the synthetic set or the model; the known ones are listed.',
    fix: 'Pick names from the list.',
  },
  E_ATTR_VALUE: { exit: 'runtime', meaning: 'A value in the attribute file is not 1 or -1 (row, attribute and value are named).', fix: 'Write 1 or -1.' },
  E_ATTR_VALUE_COUNT: {
    exit: 'runtime',
    meaning: 'A row of the attribute file has the wrong number of values.',
    fix: 'Give one value per attribute named on line 2.',
  },
  E_BACKEND_UNAVAILABLE: {
    exit: 'runtime',
    meaning: 'The TensorFlow.js backend asked for cannot load on this machine.',
    fix: 'Install the backend package shown, or choose another backend.',
  },
  E_BAD_ARGUMENT: {
    exit: 'usage',
    meaning: 'A flag (or request parameter) has a value of the wrong type or range, or flags that cannot be combined.',
    fix: 'Change the flag as the message says; `--help` lists the ranges.',
  },
  E_BAD_INPUT: { exit: 'usage', meaning: '`prepare --input` is neither a folder nor a .zip file.', fix: 'Point --input at a folder of images or a zip.' },
  E_BAD_LABELS: {
    exit: 'runtime',
    meaning: 'Attribute label rows given to a conditional network have the wrong size or hold values that are not numbers (a caller bug).',
    fix: "Pass n x K rows of +1/-1 in the model's attribute order.",
  },
  E_BAD_PROVIDER: { exit: 'usage', meaning: 'An unknown onnxruntime execution provider name was given.', fix: 'Use one of the listed providers, or auto.' },
  E_BAD_REQUEST: { exit: 'usage', meaning: 'serve: the HTTP request failed validation (400).', fix: 'Fix the request as the message says.' },
  E_BAD_SHARD: { exit: 'usage', meaning: '`--shard K/N` or `--shards N` is malformed or out of range.', fix: 'Pass K/N with 0 <= K < N.' },
  E_BODY_TOO_LARGE: { exit: 'usage', meaning: 'serve: the request body exceeds the size limit (413).', fix: 'Send fewer latents per request.' },
  E_CHECKPOINT_CORRUPT: {
    exit: 'runtime',
    meaning: 'A checkpoint file is damaged (hash, size or contents do not match its manifest).',
    fix: 'Delete that checkpoint to fall back to an older one, or retrain.',
  },
  E_CHECKPOINT_INCOMPLETE: {
    exit: 'runtime',
    meaning: 'The newest checkpoint has no manifest (it was cut off while being written by an older version).',
    fix: 'Remove it to resume from the older checkpoint named.',
  },
  E_CHECKPOINT_MISMATCH: {
    exit: 'usage',
    meaning: 'A checkpoint holds another preset, width or run than the one asked for.',
    fix: "Pass the run's --preset/--width, or use another --out.",
  },
  E_CHECKPOINT_VERSION: {
    exit: 'runtime',
    meaning: 'A checkpoint or run.json has a format version this celeba-gan cannot read.',
    fix: 'Use the celeba-gan version that wrote it, or retrain.',
  },
  E_CLIENT_GONE: {
    exit: 'runtime',
    meaning: 'serve: the client disconnected before the answer was ready (499, logs and metrics only).',
    fix: 'Nothing; the client left.',
  },
  E_COST_LIMIT: {
    exit: 'usage',
    meaning:
      "serve: the request would encode more weighted pixels (faces, grid cells or frames x pixels x the format's encoder weight) than --max-pixels allows (400).",
    fix: 'Ask for fewer faces or frames or a smaller upscale, or start serve with a larger --max-pixels.',
  },
  E_DATASET_CORRUPT: {
    exit: 'runtime',
    meaning: 'A .cgds data set file is damaged (header, size or pixel checksum).',
    fix: 'Recreate it with `celeba-gan prepare`.',
  },
  E_DATASET_MISSING: {
    exit: 'usage',
    meaning: 'The data set file named does not exist.',
    fix: 'Pass an existing .cgds file, or make one with `celeba-gan prepare`.',
  },
  E_DATASET_SIZE: {
    exit: 'usage',
    meaning: "The data set's image size does not match the preset.",
    fix: "Prepare a data set of the preset's size, or choose the matching --preset.",
  },
  E_DATASET_TOO_SMALL: {
    exit: 'usage',
    meaning: 'The data set holds fewer images than one batch (or than the evaluation needs).',
    fix: 'Use a smaller --batch-size, or prepare more images.',
  },
  E_DATASET_VERSION: {
    exit: 'runtime',
    meaning: 'The data set has a format version this celeba-gan cannot read.',
    fix: 'Re-run `celeba-gan prepare` to rewrite it.',
  },
  E_DATA_MISMATCH: {
    exit: 'usage',
    meaning: '--resume was given another data set than the run was trained on.',
    fix: "Pass the run's data set (or leave --data out).",
  },
  E_DEADLINE: { exit: 'runtime', meaning: 'serve: the request was not served within its deadline (503).', fix: 'Retry later; the server is overloaded.' },
  E_DIST_BAD_CALL: {
    exit: 'runtime',
    meaning: 'A process-group call was made with arguments the collective refuses (a bug).',
    fix: 'Report it with the message.',
  },
  E_DIST_ENV: {
    exit: 'usage',
    meaning: 'A launcher variable (RANK, WORLD_SIZE, MASTER_PORT, ...) is missing or out of range.',
    fix: 'Set it as the message says, or let `--nproc` start the ranks.',
  },
  E_DIST_FAILED: {
    exit: 'runtime',
    meaning: 'A data-parallel collective failed for a reason the addon did not classify.',
    fix: 'Run again with --verbose and report the message.',
  },
  E_DIST_RENDEZVOUS: {
    exit: 'runtime',
    meaning: 'The ranks could not meet (address, port or world size differ, or rank 0 is unreachable).',
    fix: 'Start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE.',
  },
  E_DIST_SPAWN: { exit: 'runtime', meaning: '`--nproc` could not start a rank process.', fix: 'Check that the command exists and is executable.' },
  E_DIST_TIMEOUT: {
    exit: 'runtime',
    meaning: 'A rank was lost or fell behind past --dist-timeout.',
    fix: "Read that rank's output; resume from the last checkpoint.",
  },
  E_DIST_UNAVAILABLE: {
    exit: 'runtime',
    meaning: 'The libtorch addon was built without the distributed backend asked for (Gloo or NCCL).',
    fix: 'Install its headers (libgloo-dev) and rebuild: npm run build:native.',
  },
  E_DIST_WEIGHTS_DIFFER: {
    exit: 'runtime',
    meaning: 'The data-parallel ranks start from different weights.',
    fix: 'Start every rank with the same --seed and run folder.',
  },
  E_ENGINE_UNAVAILABLE: {
    exit: 'usage',
    meaning: 'The training engine asked for by name cannot load.',
    fix: 'Build the native addon (npm run build:native) or choose another --engine.',
  },
  E_EVAL_BAD_IMAGE: { exit: 'usage', meaning: 'eval: an image in the folder given cannot be decoded.', fix: 'Remove or replace the file.' },
  E_EVAL_EXPECTED_FILE: { exit: 'usage', meaning: 'eval: a folder was given where an .onnx file is needed.', fix: 'Pass the exported generator file.' },
  E_EVAL_EXPECTED_FOLDER: {
    exit: 'usage',
    meaning: 'eval: a single file was given where a folder, data set or model is needed.',
    fix: 'Put the images in a folder and pass that.',
  },
  E_EVAL_EXPECTED_ONNX: {
    exit: 'usage',
    meaning: 'eval: the file given is not an .onnx model.',
    fix: 'Pass an exported generator, or use --generated for folders and data sets.',
  },
  E_EVAL_INPUT_MISSING: { exit: 'usage', meaning: 'eval: an input path does not exist.', fix: 'Pass an existing folder, data set or model.' },
  E_EVAL_INPUT_UNREADABLE: { exit: 'usage', meaning: 'eval: an input path cannot be read.', fix: 'Fix its permissions or pass another path.' },
  E_EVAL_NOT_ENOUGH_GENERATED: { exit: 'usage', meaning: 'eval: the generated set holds fewer images than --n.', fix: 'Lower --n or generate more images.' },
  E_EVAL_NOT_ENOUGH_REAL: { exit: 'usage', meaning: 'eval: the real set holds fewer than 2 x --n images.', fix: 'Lower --n or use a larger real set.' },
  E_EVAL_NO_IMAGES: { exit: 'usage', meaning: 'eval: the folder given holds no images.', fix: 'Put JPEG/PNG/WebP files in it.' },
  E_EVAL_NO_LABELS: {
    exit: 'usage',
    meaning: "eval: per-attribute SWD was asked for, but the real set has no labels for the model's attributes.",
    fix: 'Pass a labelled .cgds data set (`celeba-gan prepare --attributes`), or leave --per-attribute at auto.',
  },
  E_EVAL_SIZE_MISMATCH: {
    exit: 'usage',
    meaning: 'eval: generated and real images differ in size.',
    fix: "Compare sets of the same size (a data set of the model's size).",
  },
  E_EVAL_TOO_SMALL: {
    exit: 'usage',
    meaning: 'eval: the images are too small for the SWD pyramid.',
    fix: 'Use images of at least the size the message names.',
  },
  E_EXTRACTOR_CORRUPT: {
    exit: 'runtime',
    meaning: "A feature-extractor package's weights are incomplete or damaged.",
    fix: 'Reinstall the package at the version named.',
  },
  E_EXTRACTOR_MISSING: { exit: 'runtime', meaning: 'A feature-extractor package is not installed.', fix: 'Install it at the version named.' },
  E_EXTRACTOR_VERSION: {
    exit: 'runtime',
    meaning: 'A feature-extractor package has another version than the one the metrics are defined with.',
    fix: 'Install the version named.',
  },
  E_FOLD_BATCHNORM: {
    exit: 'usage',
    meaning: '--fold-batchnorm: a batch norm does not follow a layer it can fold into.',
    fix: 'Export without --fold-batchnorm.',
  },
  E_HEADERS_TOO_LARGE: {
    exit: 'usage',
    meaning: "serve: the request's headers (URL included) exceed Node's 16 KiB limit (431).",
    fix: 'Send a shorter URL and fewer headers.',
  },
  E_INCEPTION_INVALID: { exit: 'usage', meaning: 'eval: onnxruntime cannot load the --inception file.', fix: 'Pass a valid Inception-v3 ONNX file.' },
  E_INCEPTION_IO: {
    exit: 'usage',
    meaning: "eval: the --inception model's inputs or outputs are not an image classifier's.",
    fix: 'Pass an Inception-v3 ONNX with one image input and a 2048-d output.',
  },
  E_INCEPTION_MISSING: { exit: 'usage', meaning: 'eval: --features inception was asked for without --inception <file>.', fix: 'Pass --inception <file.onnx>.' },
  E_INPUT_MISSING: { exit: 'usage', meaning: '`prepare --input` does not exist.', fix: 'Pass an existing folder or zip, or use --synthetic.' },
  E_INSECURE_BIND: {
    exit: 'usage',
    meaning: 'serve: a non-local --host was asked for without an auth token.',
    fix: 'Set --auth-token (or CELEBA_GAN_TOKEN), or bind 127.0.0.1.',
  },
  E_INTERNAL: { exit: 'runtime', meaning: 'serve: an unexpected server error (500).', fix: 'Read the server log (--verbose) and report it.' },
  E_IS_FOLDER: { exit: 'usage', meaning: 'A folder is where a file is needed (EISDIR).', fix: 'Pass the path of a file.' },
  E_LISTEN: {
    exit: 'usage',
    meaning: "serve: the host and port cannot be listened on (in use, or not this machine's).",
    fix: 'Choose another --port or --host.',
  },
  E_MODEL_INVALID: { exit: 'usage', meaning: 'onnxruntime cannot load the model file.', fix: 'Re-export it with `celeba-gan export --onnx`.' },
  E_MODEL_IO: {
    exit: 'usage',
    meaning: "The model's inputs or outputs are not a celeba-gan generator's.",
    fix: 'Re-export it with `celeba-gan export --onnx`.',
  },
  E_MODEL_METADATA: {
    exit: 'usage',
    meaning: 'The model lacks (or has bad) celeba-gan metadata, or makes images that cannot be saved.',
    fix: 'Re-export it with `celeba-gan export --onnx`.',
  },
  E_MODEL_NOT_FOUND: { exit: 'usage', meaning: 'The model file cannot be read (missing or not a file).', fix: 'Pass an existing .onnx file.' },
  E_MODEL_NOT_ONNX: { exit: 'usage', meaning: 'The model file is not an ONNX model.', fix: 'Pass an exported .onnx file.' },
  E_MODEL_RUN: { exit: 'runtime', meaning: 'onnxruntime failed while running the model.', fix: 'Lower --batch-size (memory), or re-export the model.' },
  E_MODEL_WORKER: {
    exit: 'runtime',
    meaning: 'The worker thread that runs the model stopped unexpectedly.',
    fix: 'Run again with --verbose and report the message.',
  },
  E_NAN_LOSS: {
    exit: 'runtime',
    meaning: 'Training diverged: a loss or output became NaN or infinite.',
    fix: 'Resume from the last checkpoint, or lower the learning rate / change the seed.',
  },
  E_NOTHING_PREPARED: {
    exit: 'runtime',
    meaning: 'prepare: none of the input images could be prepared.',
    fix: 'Read the skip report for the reason of each file.',
  },
  E_NOT_CONDITIONAL: {
    exit: 'usage',
    meaning: 'Attributes were given to an unconditional model, network or data set.',
    fix: 'Leave the attributes out, or train a conditional model on a labelled data set.',
  },
  E_NOT_FOLDER: { exit: 'usage', meaning: 'A part of a path is a file where a folder is needed (ENOTDIR).', fix: 'Pass a path whose parents are folders.' },
  E_NOT_FOUND: { exit: 'usage', meaning: 'serve: no such route or face (404).', fix: 'Use a route the API lists.' },
  E_NO_CHECKPOINT: { exit: 'usage', meaning: 'The run folder has no (usable) checkpoint.', fix: 'Train first, or pass the folder of a run with checkpoints.' },
  E_NO_DATASET: { exit: 'usage', meaning: 'No --data was given and data/ holds no data set.', fix: 'Run `celeba-gan prepare` first, or pass --data.' },
  E_NO_EMA: {
    exit: 'usage',
    meaning: 'The checkpoint has no EMA generator, but the EMA weights were asked for.',
    fix: 'Use --weights raw, or train with --ema.',
  },
  E_NO_IMAGES: { exit: 'usage', meaning: 'prepare: the input holds no image files.', fix: 'Point --input at the folder or zip that holds the images.' },
  E_NO_LABELS: {
    exit: 'usage',
    meaning: 'A conditional model or network was run without attribute label rows.',
    fix: 'Pass attributes (for example `generate --attr`), or use a labelled data set for training.',
  },
  E_NO_MODEL: {
    exit: 'usage',
    meaning: 'No --model was given and models/ holds no .onnx model.',
    fix: 'Run `celeba-gan export --onnx` first, or pass --model.',
  },
  E_NO_PROVIDER: {
    exit: 'runtime',
    meaning: 'No onnxruntime execution provider could run the model.',
    fix: 'Read the listed failures; --provider cpu always exists.',
  },
  E_NO_RUN: {
    exit: 'usage',
    meaning: 'No run folder was given and none was found, or the one given does not exist.',
    fix: 'Run `celeba-gan train` first, or pass --run / --out.',
  },
  E_NO_SPACE: {
    exit: 'runtime',
    meaning: 'The disk (or quota) holding an output is full (ENOSPC, EDQUOT).',
    fix: 'Free space or write elsewhere, then run again.',
  },
  E_ONNXRUNTIME_LOAD: {
    exit: 'runtime',
    meaning: 'The onnxruntime-node native library cannot load on this platform.',
    fix: 'Reinstall onnxruntime-node for this platform.',
  },
  E_OPSET: { exit: 'usage', meaning: '--opset is outside the supported ONNX opsets.', fix: 'Pass an opset in the range named, or leave it out.' },
  E_OUTPUT_EXISTS: { exit: 'usage', meaning: 'An output file exists and would be overwritten.', fix: 'Pass --force, or another output path.' },
  E_OUTPUT_LOCKED: { exit: 'usage', meaning: 'Another generate run is writing to the same output folder.', fix: 'Wait for it, or pass another --out.' },
  E_OUTPUT_NO_LINKS: {
    exit: 'usage',
    meaning: 'The output file system has no hard links, which no-overwrite writes need.',
    fix: 'Write to another file system, or pass --force.',
  },
  E_OUTPUT_WRITE: {
    exit: 'runtime',
    meaning: 'An output file could not be written for a reason the OS did not classify.',
    fix: 'Read the OS message; pass another output path.',
  },
  E_PAGE_NOT_BUILT: { exit: 'runtime', meaning: 'serve: the web page has not been compiled.', fix: 'Run `npm run build`.' },
  E_PERMISSION: { exit: 'usage', meaning: 'The OS refused access to a path (EACCES, EPERM).', fix: 'Pass a path you may write, or change its permissions.' },
  E_PROVIDER_UNAVAILABLE: {
    exit: 'runtime',
    meaning: 'The execution provider asked for by name cannot start here.',
    fix: 'Install what the hint names, or choose another --provider.',
  },
  E_QUEUE_FULL: {
    exit: 'runtime',
    meaning: 'serve: the batching queue is full (503 with Retry-After).',
    fix: 'Retry after the time given, or raise --max-queue.',
  },
  E_READ_ONLY: {
    exit: 'usage',
    meaning: 'An output path is on a read-only file system (EROFS, or a new folder under a read-only mount).',
    fix: 'Pass a path on a writable disk, or remount it read-write.',
  },
  E_REQUEST_TIMEOUT: {
    exit: 'usage',
    meaning: "serve: the request's headers or body did not arrive in time (408).",
    fix: 'Send the request promptly, or start serve with a larger --headers-timeout-ms / --request-timeout-ms.',
  },
  E_RUN_CORRUPT: {
    exit: 'runtime',
    meaning: "A run folder's run.json or attribute-rows.json is unreadable or damaged.",
    fix: 'Restore run.json (or delete attribute-rows.json and resume), or start a new run with another --out.',
  },
  E_RUN_EXISTS: { exit: 'usage', meaning: 'train: --out already holds a run, and --resume was not given.', fix: 'Add --resume, or pass another --out.' },
  E_SAFETENSORS_CORRUPT: {
    exit: 'runtime',
    meaning: 'A safetensors weights file is truncated or its header is not JSON.',
    fix: 'Use another checkpoint, or retrain.',
  },
  E_SAFETENSORS_DTYPE: { exit: 'runtime', meaning: 'A safetensors tensor is not float32.', fix: 'Use a checkpoint written by celeba-gan.' },
  E_SAFETENSORS_HEADER_SIZE: {
    exit: 'runtime',
    meaning: 'A safetensors header length is too large or does not fit the file.',
    fix: 'Use another checkpoint, or retrain.',
  },
  E_SAFETENSORS_OFFSETS: { exit: 'runtime', meaning: 'A safetensors tensor has bad data offsets.', fix: 'Use another checkpoint, or retrain.' },
  E_SAFETENSORS_SHAPE: { exit: 'runtime', meaning: 'A safetensors tensor has a bad shape.', fix: 'Use another checkpoint, or retrain.' },
  E_SAFETENSORS_SIZE: {
    exit: 'runtime',
    meaning: "A safetensors tensor's byte size does not match its shape, or tensors do not tile the data.",
    fix: 'Use another checkpoint, or retrain.',
  },
  E_SHARD_INDEX_MISSING: {
    exit: 'usage',
    meaning: '`--shards N` was given but JOB_COMPLETION_INDEX is not set.',
    fix: 'Run it as an Indexed Job, or pass --shard K/N.',
  },
  E_SHUTTING_DOWN: {
    exit: 'runtime',
    meaning: 'The server or model worker is shutting down and takes no new work (503).',
    fix: 'Retry against another instance or after the restart.',
  },
  E_SPEC: {
    exit: 'runtime',
    meaning: 'An architecture spec has a layer the engines or the exporter cannot build.',
    fix: 'Fix the preset (a bug in src/config).',
  },
  E_TOO_MANY_FILES: {
    exit: 'runtime',
    meaning: 'The process or system ran out of file handles (EMFILE, ENFILE).',
    fix: 'Raise `ulimit -n` or open fewer files at once.',
  },
  E_TORCH_DEVICE: {
    exit: 'usage',
    meaning: 'The torch --device asked for does not exist (no CUDA build, or no such GPU).',
    fix: 'Pass --device cpu, or build the addon against CUDA libtorch.',
  },
  E_TORCH_UNAVAILABLE: {
    exit: 'runtime',
    meaning: 'The native libtorch addon cannot load.',
    fix: 'Build it with `npm run build:native`, or use the tfjs engine.',
  },
  E_UNAUTHORIZED: {
    exit: 'usage',
    meaning: 'serve: the request has no valid auth token (401).',
    fix: "Send the token (Authorization: Bearer, or the page's cookie).",
  },
  E_UNKNOWN_PRESET: { exit: 'usage', meaning: 'An unknown --preset name was given.', fix: 'Use one of the listed presets.' },
  E_UNSUPPORTED_MEDIA_TYPE: { exit: 'usage', meaning: 'serve: the request body is not JSON (415).', fix: 'Send Content-Type: application/json.' },
  E_WEIGHTS_MISMATCH: {
    exit: 'runtime',
    meaning: 'Saved weights do not fit the preset and width (names or shapes differ).',
    fix: 'Use weights saved for the same --preset and --width.',
  },
  E_WEIGHTS_NOT_FINITE: { exit: 'runtime', meaning: 'Weights hold NaN or infinity (a diverged run).', fix: 'Use an earlier checkpoint, or retrain.' },
  E_ZIP_UNREADABLE: {
    exit: 'usage',
    meaning: 'prepare: the --input zip cannot be read (not a zip, or its directory is damaged).',
    fix: 'Download it again, or unpack it and pass the folder.',
  },
} as const satisfies Readonly<Record<`E_${string}`, ErrorCodeInfo>>);

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes whose errors exit with 2: a UsageError takes only these. */
export type UsageCode = { [C in ErrorCode]: (typeof ERROR_CODES)[C]['exit'] extends 'usage' ? C : never }[ErrorCode];

/** Whether a string (from the native addon or a worker thread) is a registered code. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
