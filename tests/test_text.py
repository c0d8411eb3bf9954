"""Normalisation decisions (pipeline/text.py): what is kept, dropped or replaced, and why it matters."""


import json

import pytest

from pipeline.simplified import has_traditional, to_simplified
from pipeline.text import MENTION, REPLY, REPOST, URL, Normalizer, readable

norm = Normalizer().normalize


@pytest.fixture(scope="module")
def normalizer_drop(project_params):
    """The normaliser as configs/params.yaml builds it: punctuation dropped, the alias table applied."""
    from pipeline.text import make_normalizer

    return make_normalizer(project_params)


def test_traditional_becomes_simplified():
    assert norm("又被國保約談了，說我參選人大代表") == "又被国保约谈了,说我参选人大代表"


def test_full_width_letters_and_digits_become_ascii_and_lower_case():
    assert norm("ＪＣ來了，ＡＢＣ１２３") == "jc来了,abc123"


def test_urls_become_one_placeholder():
    assert norm("看这个 http://t.cn/Rx3aB9k 太离谱") == f"看这个 {URL} 太离谱"
    assert norm("https://weibo.com/1234/AbCd?from=page") == URL


def test_repost_chain_marker_is_a_placeholder_and_the_quoted_text_stays():
    # A repost is labelled by the whole text shown, so the quoted declaration must survive.
    text = norm("支持！//@刘大海:我宣布参选区人大代表")
    assert text == f"支持! {REPOST} 我宣布参选区人大代表"


def test_mentions_and_replies_are_placeholders():
    assert norm("回复@小鱼儿: 同感") == f"{REPLY} 同感"
    assert norm("@平安北京 你好") == f"{MENTION} 你好"


def test_hashtag_words_are_kept_without_the_marks():
    assert norm("#独立候选人#我来了") == "独立候选人 我来了"


def test_emoji_codes_keep_their_name_as_words():
    assert norm("小心喝茶[doge]") == "小心喝茶 doge"
    assert norm("[蜡烛][蜡烛]") == "蜡烛 蜡烛"


def test_long_repeats_are_cut():
    assert norm("哈哈哈哈哈哈哈！！！！！！") == "哈哈哈!!!"


def test_spaces_between_chinese_characters_are_removed():
    # Spaces are inserted to dodge keyword filters: 参 选, 人 大, 國 保.
    assert norm("我要参 选人 大代表，又被國 保叫去了") == "我要参选人大代表,又被国保叫去了"
    assert norm("i love 北京") == "i love 北京"


def test_invisible_and_control_characters_are_removed():
    assert norm("喝\u200b茶\u202e了\x00\x07") == "喝茶了"
    assert norm("\ufeff派出所") == "派出所"


def test_private_use_characters_in_input_cannot_forge_placeholders():
    assert norm(f"{URL}{MENTION}喝茶") == "喝茶"


@pytest.mark.parametrize("value", [None, float("nan"), 12, ""])
def test_non_text_is_an_empty_post(value):
    assert norm(value) == ""


def test_options_can_keep_or_drop_markup():
    keep = Normalizer(urls="keep", mentions="keep", reposts="keep", hashtags="keep", emoji="keep").normalize
    assert keep("@小明 #话题# [哈哈] http://t.cn/abc") == "@小明 #话题# [哈哈] http://t.cn/abc"
    drop = Normalizer(urls="drop", mentions="drop", hashtags="drop", emoji="drop").normalize
    assert drop("@小明 #话题# [哈哈] http://t.cn/abc 好") == "好"


def test_html_character_references_read_as_the_characters_they_stand_for(normalizer_drop):
    typed = normalizer_drop.normalize('男子给狗取名"城管"被拘&留')
    assert normalizer_drop.normalize("男子给狗取名&quot;城管&quot;被拘&amp;留") == typed
    assert normalizer_drop.normalize("男子给狗取名&#8220;城管&#x201d;被拘&留") == typed
    assert "quot" not in normalizer_drop.normalize("&quot;城管&quot;")
    # a reference to a private-use character cannot smuggle in a placeholder
    assert normalizer_drop.normalize("被带走&#xe001;") == normalizer_drop.normalize("被带走")
    assert Normalizer(html_entities="keep", punctuation="drop").normalize("&quot;城管&quot;") == "quot城管quot"


def test_weibo_interface_text_is_not_what_the_writer_typed(normalizer_drop):
    typed = normalizer_drop.normalize("被派出所叫去喝茶了")
    crawled_as = (" O网页链接", " O網頁鏈接", "L某某的微博视频", " L小王的秒拍视频",
                  "...展开全文c", " 收起全文d", "...展开")
    for crawled in crawled_as:
        assert normalizer_drop.normalize("被派出所叫去喝茶了" + crawled) == typed, crawled
    # a card is a link: with urls: token it is the link placeholder
    assert Normalizer(urls="token", weibo_interface="drop").normalize("看 O网页链接") == f"看 {URL}"
    # the words on their own, in what someone wrote, stay
    assert "视频" in normalizer_drop.normalize("他发的微博视频被删了")
    assert "展开" in normalizer_drop.normalize("调查展开了")
    assert Normalizer().normalize("看 O网页链接") == "看 o网页链接"  # keep (the default of older model files)


def test_settings_rebuild_the_same_normalizer(normalizer_drop):
    settings = json.loads(json.dumps(normalizer_drop.settings()))  # as the model file stores them
    clone = Normalizer.from_settings(settings)
    posts = ["國保又來了!!!! http://t.cn/abc @某人 [哈哈]", "帽子叔叔 上门 了", "參 選"]
    assert clone.settings() == normalizer_drop.settings()
    assert clone.transform(posts) == normalizer_drop.transform(posts)


def test_invalid_option_is_rejected():
    with pytest.raises(ValueError):
        Normalizer(urls="hide")


def test_readable_names_placeholders():
    assert readable(f"{URL} {MENTION} {REPOST} {REPLY}") == "<url> <@> <repost> <reply>"


def test_traditional_detection():
    assert has_traditional("參選")
    assert not has_traditional("参选")
    assert to_simplified("約談") == "约谈"


def test_every_quotation_mark_style_becomes_ascii():
    from pipeline.text import Normalizer

    normalizer = Normalizer()
    plain = normalizer.normalize('民警说我这样做"影响不好"')
    for styled in ("民警说我这样做“影响不好”", "民警说我这样做「影响不好」", "民警说我这样做『影响不好』"):
        assert normalizer.normalize(styled) == plain
    assert normalizer.normalize("他说‘别发了’") == "他说'别发了'"


def test_dropped_punctuation_leaves_the_same_text(normalizer_drop):
    plain = normalizer_drop.normalize("又被请喝茶了 问我转的帖子")
    for styled in ("又被请喝茶了。问我转的帖子。", "“又被请喝茶了”，问我转的帖子！！！",
                   "又被请喝茶了~问我转的帖子。。。", "又被请喝茶了，问我转的帖子 😂", "【又被请喝茶了】问我转的帖子?"):
        assert normalizer_drop.normalize(styled) == plain, styled


def test_dropped_punctuation_reads_as_the_post_typed_without_it(normalizer_drop):
    plain = normalizer_drop.normalize("投票时间本周四12001800拘留10天")
    assert normalizer_drop.normalize("投票时间：本周四12:00—18:00，拘留10天。") == plain
    assert normalizer_drop.normalize("认识一下我，3号楼的小周，电话：12345") == "认识一下我3号楼的小周电话12345"
    assert normalizer_drop.normalize("拘留 10 天") == "拘留 10 天"  # the writer's own spaces stay
    assert normalizer_drop.normalize("ok,fine") == "ok fine"  # between letters a mark is still a space


def test_aliases_write_slang_as_the_plain_word(normalizer_drop):
    assert normalizer_drop.normalize("帽子叔叔来敲门了") == "警察来敲门了"
    assert normalizer_drop.normalize("JC上门了") == "警察上门了"
    assert normalizer_drop.normalize("我的jcpenney卡") == "我的jcpenney卡"  # not inside a longer ASCII word


def test_alias_table_errors_are_one_line(tmp_path):
    from pipeline.errors import UserError
    from pipeline.word_lists import read_aliases

    path = tmp_path / "aliases.yaml"
    path.write_text("警察: [jc]\n政府: [JC]\n", encoding="utf-8")
    with pytest.raises(UserError, match="given twice"):
        read_aliases(path)
    path.write_text("警察: jc\n", encoding="utf-8")
    with pytest.raises(UserError, match="list of aliases"):
        read_aliases(path)


def test_a_link_ends_where_an_emoji_code_begins():
    assert norm("看 http://t.cn/zHs7wQe[哈哈]") == f"看 {URL} 哈哈"
