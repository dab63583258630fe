"""A bilingual term map: common software-development words in Chinese, with English equivalents.

The default embedding model reads English only. When a question is written in Chinese,
the English terms for the field words it contains are added to the retrieval query, so both
the dense and the lexical retriever can match English docs and code. Identifiers the
question quotes (`Runner.run`, `max_turns`) already match as they are. The map holds the
vocabulary of frameworks in general (agents, tools, commands, options, streaming...),
never words of one particular project; longer terms are matched first.
"""
from __future__ import annotations

TERMS: dict[str, str] = {
    # programming basics
    "函数": "function", "方法": "method", "类": "class", "对象": "object", "实例": "instance",
    "模块": "module", "包": "package", "库": "library", "变量": "variable", "常量": "constant",
    "参数": "parameter argument", "返回值": "return value", "返回": "return", "类型": "type",
    "字符串": "string", "整数": "integer", "布尔": "boolean", "列表": "list", "字典": "dict",
    "属性": "attribute property", "字段": "field", "接口": "interface", "装饰器": "decorator",
    "装饰": "decorator decorate", "继承": "inherit subclass", "子类": "subclass", "基类": "base class",
    "构造": "constructor init", "初始化": "initialize init", "默认值": "default value", "默认": "default",
    "签名": "signature", "注解": "annotation", "文档字符串": "docstring", "注释": "comment",
    "异步": "async asynchronous", "同步": "sync synchronous", "协程": "coroutine", "线程": "thread",
    "进程": "process", "回调": "callback", "钩子": "hook", "事件": "event", "监听": "listener",
    "异常": "exception error", "错误": "error", "报错": "error raise", "抛出": "raise", "捕获": "catch",
    "重试": "retry", "超时": "timeout", "秒": "seconds", "日志": "log logging", "调试": "debug",
    "配置": "config configuration settings", "设置": "settings set", "选项": "option",
    "环境变量": "environment variable",
    "命令行": "command line cli", "命令": "command", "子命令": "subcommand", "终端": "terminal",
    "输入": "input", "输出": "output", "结构化": "structured", "格式": "format", "解析": "parse parser",
    "序列化": "serialize", "验证": "validate validation", "校验": "validate check", "转换": "convert",
    "文件": "file", "路径": "path", "目录": "directory", "读取": "read", "写入": "write", "打开": "open",
    "安装": "install", "导入": "import", "依赖": "dependency", "版本": "version", "升级": "upgrade",
    "测试": "test testing", "示例": "example", "例子": "example", "教程": "tutorial", "文档": "docs documentation",
    "实现": "implementation implement", "源码": "source code", "代码": "code", "调用": "call invoke",
    "执行": "run execute", "运行": "run", "启动": "start", "停止": "stop", "关闭": "close disable",
    "启用": "enable", "禁用": "disable", "开启": "enable", "创建": "create", "删除": "delete remove",
    "添加": "add", "注册": "register", "更新": "update", "修改": "modify change", "自定义": "custom customize",
    "客户端": "client", "服务端": "server", "服务器": "server", "请求": "request", "响应": "response",
    "连接": "connection connect", "会话": "session", "令牌": "token", "密钥": "key api key",
    "认证": "auth authentication",
    "权限": "permission", "缓存": "cache", "存储": "storage store", "数据库": "database", "内存": "memory",
    "记忆": "memory",
    "持久化": "persist persistence", "历史": "history", "上下文": "context", "状态": "state status",
    "流式": "streaming stream", "流": "stream", "分页": "pagination", "并发": "concurrent concurrency",
    "并行": "parallel", "队列": "queue", "批量": "batch", "限流": "rate limit", "速率": "rate",
    "提示": "prompt hint", "帮助": "help", "用法": "usage", "颜色": "color", "进度条": "progress bar",
    # agents and LLM frameworks
    "智能体": "agent", "代理": "agent proxy", "模型": "model", "大模型": "llm model", "语言模型": "language model",
    "工具": "tool", "工具调用": "tool call", "交接": "handoff", "移交": "handoff", "转交": "handoff",
    "护栏": "guardrail", "防护": "guardrail", "追踪": "tracing trace", "跟踪": "tracing trace",
    "轮": "turn", "轮次": "turns", "多轮": "multi turn", "对话": "conversation", "聊天": "chat",
    "消息": "message", "指令": "instructions", "系统提示": "system prompt", "人工审批": "human approval",
    "审批": "approval approve", "人工": "human", "中断": "interrupt interruption", "恢复": "resume",
    "语音": "voice audio", "语音识别": "speech to text stt", "语音合成": "text to speech tts",
    "实时": "realtime", "沙箱": "sandbox", "向量": "vector", "嵌入": "embedding", "检索": "retrieval search",
    "搜索": "search", "索引": "index", "知识库": "knowledge base", "管道": "pipeline", "工作流": "workflow",
    "结果": "result", "文本": "text", "内容": "content", "生成": "generate", "打印": "print",
    "自动": "automatic", "手动": "manual", "记住": "remember memory", "判断": "detect determine",
    "指定": "specify", "最多": "max maximum", "最大": "max maximum", "最小": "min minimum",
    "超过": "exceed", "之前": "before", "之后": "after", "多少": "how many", "为什么": "why", "区别": "difference",
    "用户": "user", "密码": "password", "确认": "confirm confirmation", "显示": "show display",
    "隐藏": "hide hidden", "字符": "character char", "数据": "data", "剩余": "remaining", "时间": "time",
    "日期": "date", "迭代": "iterate iterator iterable", "长度": "length len", "限制": "limit restrict",
    "范围": "range", "边界": "bound boundary clamp", "活动": "active", "当前": "current", "识别": "recognize",
    "空格": "whitespace space", "大写": "uppercase upper", "小写": "lowercase lower", "值": "value",
    "模式": "mode", "写": "write", "读": "read", "真正": "actually", "数组": "array", "元素": "element item",
    "排序": "sort", "过滤": "filter", "循环": "loop", "条件": "condition", "分支": "branch", "合并": "merge",
    "拆分": "split", "复制": "copy", "移动": "move", "重命名": "rename", "阈值": "threshold", "精度": "precision",
    "编码": "encoding encode", "解码": "decode", "压缩": "compress", "网络": "network", "端口": "port",
    "地址": "address url", "主机": "host", "证书": "certificate", "加密": "encrypt", "签名验证": "signature verify",
    "标准输入": "stdin standard input", "标准输出": "stdout standard output", "管道符": "pipe",
    "退出码": "exit code", "退出": "exit", "空": "none null empty", "必填": "required", "可选": "optional",
    "多个": "multiple", "重复": "repeat multiple", "嵌套": "nested", "分组": "group", "组": "group",
    "插件": "plugin", "扩展": "extension extend", "懒加载": "lazy load", "加载": "load", "保存": "save",
    "清理": "cleanup", "资源": "resource", "上下文管理器": "context manager", "生命周期": "lifecycle",
    "提示符": "prompt", "交互": "interactive", "自动补全": "completion autocomplete", "补全": "completion",
    "宽度": "width", "换行": "newline wrap", "缩进": "indent", "样式": "style", "主题": "theme",
    "警告": "warning", "弃用": "deprecated deprecation", "兼容": "compatible compatibility",
    "平台": "platform", "操作系统": "operating system os", "编辑器": "editor", "浏览器": "browser",
    "提供商": "provider", "提供者": "provider", "用量": "usage", "令牌数": "tokens", "成本": "cost",
}

_BY_LENGTH = sorted(TERMS, key=len, reverse=True)


def english_terms(text: str) -> str:
    """English equivalents of the field words found in a Chinese text (longest match first)."""
    found: list[str] = []
    rest = text
    for term in _BY_LENGTH:
        if term in rest:
            found.append(TERMS[term])
            rest = rest.replace(term, " ")
    return " ".join(dict.fromkeys(found))
