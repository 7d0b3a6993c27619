"""Real embedded models (slow): speech round trip, tool calls and cancellation."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("xllamacpp")
pytest.importorskip("faster_whisper")
pytest.importorskip("hibari")

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema  # noqa: E402
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema  # noqa: E402
from pipecat.audio.utils import create_stream_resampler  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    ErrorFrame,
    FunctionCallResultFrame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.processors.aggregators.llm_context import LLMContext  # noqa: E402
from pipecat.processors.frame_processor import FrameProcessor  # noqa: E402
from pipecat.tests.utils import SleepFrame, run_test  # noqa: E402

from pipecat_tandem.models.local_stack import LocalStack  # noqa: E402
from pipecat_tandem.models.local_stt import LocalWhisperSTTService  # noqa: E402
from pipecat_tandem.models.local_tts import HibariTTSService, float_to_pcm16  # noqa: E402
from pipecat_tandem.models.requantize import QWEN_05B_Q4_0  # noqa: E402
from pipecat_tandem.policy.now_view import is_now_message  # noqa: E402

pytestmark = pytest.mark.slow

DELEGATE_TOOL = FunctionSchema(
    name="delegate",
    description="Hand a task to a more capable background assistant. Use it for any "
    "arithmetic or calculation, planning, or looking something up.",
    properties={"task": {"type": "string", "description": "The task, in full."}},
    required=["task"],
)


@pytest.fixture(scope="module")
def stack():
    # One load of the 0.5B for the whole module (the servers are loop-agnostic), as the
    # offline default runs it: the shipped weights re-encoded in Q4_0.
    local = LocalStack(interaction_model=QWEN_05B_Q4_0, background_model=None)
    asyncio.run(local.interaction_server.warm())
    return local


@pytest.fixture(scope="module")
def stt():
    return LocalWhisperSTTService(cpu_threads=2)


async def to_16k(pcm24: bytes) -> bytes:
    return await create_stream_resampler().resample(pcm24, 24000, 16000)


async def test_spoken_round_trip(stack, stt):
    """TTS question → STT → interaction model → TTS → STT contains the expected words."""
    tts = HibariTTSService()
    question = float_to_pcm16(np.concatenate(tts.synthesize("What is the capital of France?")))
    heard = stt.transcribe_pcm(await to_16k(question))
    assert "capital of france" in heard.lower()

    llm = stack.interaction_llm()
    context = LLMContext(messages=[{"role": "user", "content": heard}])
    down, _ = await run_test(
        Pipeline([llm, HibariTTSService()]),
        frames_to_send=[LLMContextFrame(context)],
        expected_down_frames=None,
    )
    # The TTS turns the model's LLMTextFrames into the TTSTextFrames it spoke.
    reply = "".join(f.text for f in down if isinstance(f, TTSTextFrame))
    assert "paris" in reply.lower()
    audio = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert audio and all(f.sample_rate == 24000 for f in down if isinstance(f, TTSAudioRawFrame))
    assert "paris" in stt.transcribe_pcm(await to_16k(audio)).lower()


async def test_tool_call_in_text_runs_the_registered_handler(stack):
    llm = stack.interaction_llm(use_tools=True)
    calls: list[dict] = []

    async def delegate(params):
        calls.append(dict(params.arguments))
        await params.result_callback({"status": "started"})

    llm.register_function("delegate", delegate)
    context = LLMContext(
        messages=[{"role": "user", "content": "What is 1234 times 5678?"}],
        tools=ToolsSchema(standard_tools=[DELEGATE_TOOL]),
    )
    down, _ = await run_test(
        llm, frames_to_send=[LLMContextFrame(context)], expected_down_frames=None
    )
    assert len(calls) == 1
    assert "1234" in calls[0]["task"] and "5678" in calls[0]["task"]
    assert any(isinstance(f, FunctionCallResultFrame) for f in down)
    # The call's JSON is never spoken.
    assert "{" not in "".join(f.text for f in down if isinstance(f, LLMTextFrame))


async def test_closing_a_stream_stops_generation_and_frees_the_model(stack):
    server = stack.interaction_server
    request = {
        "messages": [{"role": "user", "content": "Count from one to two hundred in words."}],
        "max_tokens": 400,
    }
    chunks = 0
    stream = server.stream_chat(request)
    async for _ in stream:
        chunks += 1
        if chunks == 3:
            break
    await stream.aclose()
    # The next request runs (the lock was released) and completes normally.
    reply = await asyncio.to_thread(
        server.complete, {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 5}
    )
    assert reply["choices"][0]["message"]["content"]


async def test_two_calls_stream_at_once_each_in_its_own_slot(stack):
    # Issue 14, part 1: one loaded interaction model serves a slot per call;
    # two calls' turns run at once, each answers its own conversation, and a
    # call hanging up mid-reply does not disturb the other.
    server = stack.interaction_server
    assert server.config.slots == stack.call_slots >= 1

    def ask(word: str) -> dict:
        return {
            "messages": [
                {"role": "system", "content": "You repeat words exactly."},
                {"role": "user", "content": f"Reply with only the word {word}."},
            ],
            "max_tokens": 8,
            "temperature": 0,
        }

    async def text(request: dict) -> str:
        parts = []
        async for chunk in server.stream_chat(request):
            parts += [c["delta"].get("content") or "" for c in chunk.get("choices", [])]
        return "".join(parts)

    async def hang_up() -> None:
        stream = server.stream_chat({**ask("cherry"), "max_tokens": 200})
        async for _ in stream:
            break
        await stream.aclose()

    apple, banana, _ = await asyncio.gather(text(ask("apple")), text(ask("banana")), hang_up())
    assert "apple" in apple.lower() and "banana" in banana.lower(), (apple, banana)
    for _ in range(50):  # the hung-up request stops within a token, on its own thread
        if server.in_flight == 0:
            break
        await asyncio.sleep(0.1)
    assert server.in_flight == 0


async def test_run_inference_with_response_schema(stack):
    llm = stack.interaction_llm()
    context = LLMContext(messages=[{"role": "user", "content": "The capital of France, as JSON."}])
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    import json

    reply = await llm.run_inference(context, max_tokens=30, response_schema=schema)
    assert isinstance(json.loads(reply)["city"], str)


async def test_bad_request_is_an_error_not_a_crash(stack):
    with pytest.raises((ValueError, RuntimeError)):
        await asyncio.to_thread(stack.interaction_server.complete, {"messages": "garbage"})
    reply = await asyncio.to_thread(
        stack.interaction_server.complete,
        {"messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 3},
    )
    assert reply["choices"]


async def test_stt_bad_audio(stt):
    assert stt.transcribe_pcm(b"") == ""
    with pytest.raises(ValueError, match="16-bit"):
        stt.transcribe_pcm(b"\x00\x01\x02")
    # Silence and noise are not words.
    assert stt.transcribe_pcm(bytes(16000 * 2)) == ""
    frames = [f async for f in stt.run_stt(b"\x01")]
    assert len(frames) == 1 and isinstance(frames[0], ErrorFrame)


@pytest.mark.parametrize("kwargs", [{"cpu_threads": 0}, {"beam_size": 0}, {"num_workers": 0}])
def test_stt_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be >= 1"):
        LocalWhisperSTTService(**kwargs)


async def test_the_stacks_whisper_transcribes_two_calls_at_once():
    # Two calls' utterances ending together are transcribed side by side by
    # one loaded model (a CTranslate2 worker per call slot).
    local = LocalStack(interaction_model=None, background_model=None, call_slots=2)
    first, second = local.stt(), local.new_stt()
    assert second.whisper_model is first.whisper_model
    chunks = await asyncio.to_thread(local.tts().synthesize, "Hello there, how are you?")
    speech = await to_16k(b"".join(float_to_pcm16(c) for c in chunks))
    texts = await asyncio.gather(
        asyncio.to_thread(first.transcribe_pcm, speech),
        asyncio.to_thread(second.transcribe_pcm, speech),
    )
    assert texts[0] == texts[1] and "hello" in texts[0].lower(), texts


async def test_tts_bad_text():
    tts = HibariTTSService()
    assert [f async for f in tts.run_tts("", "ctx")] == []
    assert [f async for f in tts.run_tts("   \n", "ctx")] == []
    too_long = [f async for f in tts.run_tts("word " * 2000, "ctx")]
    assert len(too_long) == 1 and isinstance(too_long[0], ErrorFrame)
    # Symbols and emoji: no crash (audio or nothing, never an exception).
    odd = [f async for f in tts.run_tts("🙂 ### @@@ ¿¡ 12:30 $4.50", "ctx")]
    assert all(isinstance(f, (TTSAudioRawFrame, ErrorFrame)) for f in odd)


async def test_invented_tool_is_never_read_aloud(stack):
    from loguru import logger

    notes: list[str] = []
    sink = logger.add(lambda m: notes.append(str(m)), level="DEBUG")
    llm = stack.interaction_llm(
        use_tools=True,
        system_instruction='Reply ONLY with this JSON and nothing else: {"name": "planTrip", '
        '"arguments": {"city": "Rome"}}',
    )
    calls: list[dict] = []

    async def delegate(params):
        calls.append(dict(params.arguments))
        await params.result_callback({"status": "started"})

    llm.register_function("delegate", delegate)
    context = LLMContext(
        messages=[{"role": "user", "content": "Plan a trip to Rome."}],
        tools=ToolsSchema(standard_tools=[DELEGATE_TOOL]),
    )
    try:
        down, _ = await run_test(
            llm, frames_to_send=[LLMContextFrame(context)], expected_down_frames=None
        )
    finally:
        logger.remove(sink)
    spoken = "".join(f.text for f in down if isinstance(f, LLMTextFrame))
    assert "{" not in spoken and "planTrip" not in spoken
    # Either it used the real tool, or the invented one was answered without tools.
    assert calls or any("no usable tool call" in n for n in notes), notes


class _NextTurn(FrameProcessor):
    """After each reply, edits the context as the tandem would: drops the old "now"
    view, keeps the reply, adds a fresh view and the user's next words."""

    def __init__(self, context: LLMContext, next_user: str) -> None:
        super().__init__()
        self._context = context
        self._next_user = next_user
        self._reply: list[str] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self._reply.append(frame.text)
        elif isinstance(frame, LLMFullResponseEndFrame) and self._reply:
            kept = [m for m in self._context.get_messages() if not is_now_message(m)]
            self._context.set_messages(
                kept
                + [
                    {"role": "assistant", "content": "".join(self._reply)},
                    {"role": "developer", "content": '[now 00:21.4] jobs: j1 "plan a trip" 9s'},
                    {"role": "user", "content": self._next_user},
                ]
            )
            self._reply = []
        await self.push_frame(frame, direction)


async def _second_turn_new_tokens(stack, *, refill: bool, first_user: str) -> int:
    llm = stack.interaction_llm(refill_cache=refill)
    context = LLMContext(
        messages=[
            {"role": "developer", "content": '[now 00:03.0] jobs: j1 "plan a trip" 1s'},
            {"role": "user", "content": first_user},
        ]
    )
    await run_test(
        Pipeline([llm, _NextTurn(context, "And what do bees make?")]),
        frames_to_send=[LLMContextFrame(context), SleepFrame(3.0), LLMContextFrame(context)],
        expected_down_frames=None,
    )
    assert llm.last_prompt_tokens is not None
    return llm.last_prompt_tokens[0]


async def test_cache_refill_keeps_the_next_turn_cheap_despite_a_changing_now_view(stack):
    without = await _second_turn_new_tokens(stack, refill=False, first_user="Is the sky blue?")
    with_refill = await _second_turn_new_tokens(stack, refill=True, first_user="Is grass green?")
    # Without the refill the turn re-reads everything after the old view (its first
    # question and the reply); with it, only the fresh view and the new question.
    assert with_refill < without - 15  # measured 38 against 60
    assert with_refill < 45


def _frames(pcm: bytes) -> list:
    step = 640  # 20 ms at 16 kHz
    return [
        InputAudioRawFrame(pcm[i : i + step].ljust(step, b"\0"), 16000, 1)
        for i in range(0, len(pcm), step)
    ]


async def _speech(text: str) -> bytes:
    return await to_16k(float_to_pcm16(np.concatenate(HibariTTSService().synthesize(text))))


async def _utterance(stt: LocalWhisperSTTService, pcm: bytes, settle_s: float) -> list[str]:
    """One VAD-bounded utterance through the service; returns its transcripts."""
    down, _ = await run_test(
        stt,
        frames_to_send=[
            VADUserStartedSpeakingFrame(),
            *_frames(pcm + bytes(640 * 12)),  # 240 ms of quiet, then the VAD's stop
            VADUserStoppedSpeakingFrame(),
            SleepFrame(settle_s),
        ],
        expected_down_frames=None,
    )
    return [f.text.lower() for f in down if isinstance(f, TranscriptionFrame)]


async def test_transcription_starts_early_and_is_used_when_no_voice_follows():
    stt = LocalWhisperSTTService(cpu_threads=2)
    texts = await _utterance(stt, await _speech("What is the capital of France?"), 1.5)
    assert len(texts) == 1 and "capital of france" in texts[0]
    assert stt.early_transcripts == 1


async def test_voice_after_an_early_start_is_not_lost():
    stt = LocalWhisperSTTService(cpu_threads=2)
    first = await _speech("What is the capital of France?")
    second = await _speech("And of Spain?")
    # A 160 ms pause starts an early transcription, then the user goes on.
    texts = await _utterance(stt, first + bytes(640 * 8) + second, 2.0)
    assert len(texts) == 1 and "france" in texts[0] and "spain" in texts[0]


async def test_early_transcription_can_be_turned_off():
    stt = LocalWhisperSTTService(cpu_threads=2, early=False)
    texts = await _utterance(stt, await _speech("Tell me a joke."), 1.5)
    assert len(texts) == 1 and "joke" in texts[0] and stt.early_transcripts == 0


def test_spoken_reply_starts_with_sound_not_silence():
    tts = HibariTTSService()
    for text in ("The capital of France is Paris.", "Sure, here you go."):
        audio = np.concatenate(tts.synthesize(text))
        window = 240  # 10 ms at 24 kHz
        rms = np.sqrt((audio[: audio.size // window * window].reshape(-1, window) ** 2).mean(1))
        first_sound_s = int(np.argmax(rms >= 0.01)) * window / 24000
        assert first_sound_s <= 0.03  # hibari itself leads with ~0.3 s of silence
